#!/usr/bin/env node
// Resolves the pinned Temporal CLI (which carries the dev server). Order, first hit wins:
//   1. $TEMPORAL_CLI                       (an explicit path; an error if it does not run)
//   2. `temporal` on PATH                  (if its version fits: same major, >= the pinned version)
//   3. the per-user cache                  (~/.cache/batchline/temporal-cli-<version>/temporal)
//   4. `go install ...@v<version>`         (built into the cache when Go is available)
//   5. the official release archive        (downloaded into the cache)
// Routes 4 and 5 hold a lock (scripts/cache-lock.mjs) so two processes asking at once build once. The lock comes
// from a dependency, so this runs once dependencies are installed: scripts/setup.mjs imports it after `npm ci`.
// Usage: node scripts/temporal-cli.mjs  -> prints the path of a working binary on stdout.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { withCacheLock } from './cache-lock.mjs';

const execFileAsync = promisify(execFile);

export const TEMPORAL_CLI_VERSION = '1.5.1';
const GO_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';

/** The per-user cache root: $BATCHLINE_CACHE_DIR, else $XDG_CACHE_HOME/batchline, else ~/.cache/batchline. */
export function cacheRoot(env = process.env) {
  if (env.BATCHLINE_CACHE_DIR) return path.resolve(env.BATCHLINE_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'batchline');
}

export function cachedBinaryPath(env = process.env) {
  return path.join(cacheRoot(env), `temporal-cli-${TEMPORAL_CLI_VERSION}`, binaryName());
}

function binaryName() {
  return process.platform === 'win32' ? 'temporal.exe' : 'temporal';
}

/** Parses `temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)` into [1, 5, 1]. */
export function parseCliVersion(text) {
  const m = /temporal version (\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

export function versionFits(found, pinned = TEMPORAL_CLI_VERSION) {
  const want = pinned.split('.').map(Number);
  if (!found || found[0] !== want[0]) return false;
  for (let i = 1; i < 3; i++) {
    if (found[i] !== want[i]) return found[i] > want[i];
  }
  return true;
}

async function cliVersion(binary, env) {
  const { stdout } = await execFileAsync(binary, ['--version'], { timeout: 20_000, env });
  return parseCliVersion(stdout);
}

function findOnPath(env) {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, binaryName());
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True when `file` is a regular file this process may execute. */
export function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Resolves a working Temporal CLI and returns its absolute path.
 * @param {{ env?: NodeJS.ProcessEnv, log?: (line: string) => void, allowBuild?: boolean, allowDownload?: boolean }} [options]
 */
export async function resolveTemporalCli(options = {}) {
  const env = options.env ?? process.env;
  const log = options.log ?? ((line) => process.stderr.write(`[temporal-cli] ${line}\n`));
  const tried = [];

  // 1. explicit path
  if (env.TEMPORAL_CLI) {
    const explicit = path.resolve(env.TEMPORAL_CLI);
    if (!isExecutable(explicit)) {
      throw new Error(
        `TEMPORAL_CLI=${env.TEMPORAL_CLI} is not an executable file. Unset it or point it at a Temporal CLI binary.`,
      );
    }
    return explicit;
  }
  tried.push('$TEMPORAL_CLI: not set');

  // 2. PATH
  const onPath = findOnPath(env);
  if (onPath) {
    try {
      const found = await cliVersion(onPath, env);
      if (versionFits(found)) return onPath;
      tried.push(
        `PATH: ${onPath} is version ${found ? found.join('.') : 'unknown'}, need ${TEMPORAL_CLI_VERSION} or a later 1.x`,
      );
    } catch (err) {
      tried.push(`PATH: ${onPath} did not run (${err.message.split('\n')[0]})`);
    }
  } else {
    tried.push('PATH: no `temporal` binary');
  }

  // 3. cache
  const cached = cachedBinaryPath(env);
  if (isExecutable(cached)) return cached;
  tried.push(`cache: nothing at ${cached}`);

  // 4 + 5 under a lock: another process may be building right now.
  fs.mkdirSync(path.dirname(cached), { recursive: true });
  const obtained = await withCacheLock(path.dirname(cached), { log, what: 'obtaining the Temporal CLI' }, async () => {
    if (isExecutable(cached)) return true; // built by whoever held the lock before us
    if (options.allowBuild !== false) {
      const built = await tryGoInstall(cached, env, log);
      if (built.ok) return true;
      tried.push(`go install ${GO_PACKAGE}@v${TEMPORAL_CLI_VERSION}: ${built.reason}`);
    } else {
      tried.push('go install: disabled');
    }
    if (options.allowDownload !== false) {
      const downloaded = await tryDownload(cached, env, log);
      if (downloaded.ok) return true;
      tried.push(`download: ${downloaded.reason}`);
    } else {
      tried.push('download: disabled');
    }
    return false;
  });
  if (obtained) return cached;

  throw new Error(
    [
      `Could not obtain the Temporal CLI ${TEMPORAL_CLI_VERSION}. Tried, in order:`,
      ...tried.map((t) => `  - ${t}`),
      'Fix one of these:',
      `  - install Go (https://go.dev/dl) so the CLI can be built: go install ${GO_PACKAGE}@v${TEMPORAL_CLI_VERSION}`,
      `  - or put a Temporal CLI ${TEMPORAL_CLI_VERSION} binary on PATH, or at ${cached}`,
      '  - or set TEMPORAL_CLI=/path/to/temporal',
    ].join('\n'),
  );
}

async function tryGoInstall(target, env, log) {
  // -X stamps the version (a plain `go install` reports 0.0.0-DEV); -s -w drop the symbol and debug tables
  // (nobody debugs the cached dev server; the binary is smaller without them).
  const ldflags = `-s -w -X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`;
  return goInstall(`${GO_PACKAGE}@v${TEMPORAL_CLI_VERSION}`, target, {
    env,
    log,
    ldflags,
    what: `Temporal CLI ${TEMPORAL_CLI_VERSION}`,
  });
}

/**
 * Builds one Go package (`module/path/cmd/x@vX`) with `go install` into a staging directory beside `target`, then
 * renames the binary to `target`. The caller holds the cache lock.
 * @param {string} pkg
 * @param {string} target
 * @param {{ env: NodeJS.ProcessEnv, log: (line: string) => void, ldflags?: string, what: string }} options
 * @returns {Promise<{ ok: true } | { ok: false, reason: string }>}
 */
export async function goInstall(pkg, target, { env, log, ldflags = '-s -w', what }) {
  const go = env.GO_BINARY || 'go';
  try {
    await execFileAsync(go, ['version'], { timeout: 20_000, env });
  } catch {
    return { ok: false, reason: `Go not available (\`${go} version\` failed)` };
  }
  const staging = fs.mkdtempSync(path.join(path.dirname(target), '.build-'));
  const started = Date.now();
  log(`building ${what} with Go into ${path.dirname(target)} (takes a few minutes, once)`);
  const ticker = setInterval(() => log(`still building... ${Math.round((Date.now() - started) / 1000)} s`), 20_000);
  try {
    const code = await new Promise((resolve) => {
      const child = spawn(go, ['install', `-ldflags=${ldflags}`, pkg], {
        env: { ...env, GOBIN: staging },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('error', () => resolve(-1));
      child.on('exit', (c) => resolve(c ?? -1));
    });
    const built = fs
      .readdirSync(staging)
      .map((f) => path.join(staging, f))
      .find(isExecutable);
    if (code !== 0 || !built) return { ok: false, reason: `go install ${pkg} exited with ${code}` };
    fs.renameSync(built, target);
    log(`built ${target} in ${Math.round((Date.now() - started) / 1000)} s`);
    return { ok: true };
  } finally {
    clearInterval(ticker);
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

async function tryDownload(target, env, log) {
  const platform = { linux: 'linux', darwin: 'darwin', win32: 'windows' }[process.platform];
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch];
  if (!platform || !arch) return { ok: false, reason: `no release archive for ${process.platform}/${process.arch}` };
  const base = env.TEMPORAL_CLI_DOWNLOAD_URL || 'https://temporal.download/cli/archive';
  const url = `${base}/v${TEMPORAL_CLI_VERSION}?platform=${platform}&arch=${arch}`;
  log(`downloading ${url}`);
  const staging = fs.mkdtempSync(path.join(path.dirname(target), '.download-'));
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(60_000), redirect: 'follow' });
    if (!res.ok) return { ok: false, reason: `${url} answered ${res.status}` };
    const archive = path.join(staging, platform === 'windows' ? 'cli.zip' : 'cli.tar.gz');
    fs.writeFileSync(archive, Buffer.from(await res.arrayBuffer()));
    await execFileAsync('tar', ['-xf', archive, '-C', staging], { timeout: 60_000 });
    const extracted = path.join(staging, binaryName());
    if (!isExecutable(extracted)) return { ok: false, reason: `the archive from ${url} held no ${binaryName()}` };
    fs.renameSync(extracted, target);
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `${url} failed (${err.cause?.code ?? err.message})` };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

const USAGE = 'usage: node scripts/temporal-cli.mjs   (prints the path of a working Temporal CLI on stdout)';

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  let help = false;
  try {
    help = Boolean(parseArgs({ options: { help: { type: 'boolean', short: 'h' } } }).values.help);
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  resolveTemporalCli().then(
    (p) => process.stdout.write(`${p}\n`),
    (err) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
