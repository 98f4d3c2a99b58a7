#!/usr/bin/env node
// Resolves the binaries of a real Temporal cluster (what `batchline cluster` and the cluster tests run), built once
// per machine with Go (1.25 or later, as the server module requires) from the module proxy into the per-user cache,
// each entry under its own lock (scripts/cache-lock.mjs) so two processes asking at once build once:
//   <cache>/temporal-server-<v>/temporal-server      go.temporal.io/server/cmd/server
//   <cache>/temporal-server-<v>/temporal-sql-tool    go.temporal.io/server/cmd/tools/sql
//   <cache>/temporal-server-<v>/schema/postgresql/   the SQL schema files shipped in that module
//   <cache>/temporal-ui-<v>/temporal-ui-server       github.com/temporalio/ui-server/v2/cmd/server
// The UI server is optional: a failed UI build is reported and the cluster runs without it.
// Usage: node scripts/temporal-server.mjs   -> prints the paths as JSON on stdout.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { withCacheLock } from './cache-lock.mjs';
import { cacheRoot, goInstall, isExecutable } from './temporal-cli.mjs';

const execFileAsync = promisify(execFile);

/** The server the Temporal CLI 1.5.1 dev server embeds, so both paths run the same server code. */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
/** The Web UI the same CLI embeds. */
export const TEMPORAL_UI_VERSION = '2.42.1';
const SERVER_MODULE = 'go.temporal.io/server';
const UI_PACKAGE = 'github.com/temporalio/ui-server/v2/cmd/server';

export function temporalServerPaths(env = process.env) {
  const dir = path.join(cacheRoot(env), `temporal-server-${TEMPORAL_SERVER_VERSION}`);
  return {
    server: path.join(dir, 'temporal-server'),
    sqlTool: path.join(dir, 'temporal-sql-tool'),
    schemaDir: path.join(dir, 'schema', 'postgresql', 'v12'),
    uiServer: path.join(cacheRoot(env), `temporal-ui-${TEMPORAL_UI_VERSION}`, 'temporal-ui-server'),
  };
}

function complete(p) {
  return isExecutable(p.server) && isExecutable(p.sqlTool) && fs.existsSync(path.join(p.schemaDir, 'temporal'));
}

/** Copies the module's PostgreSQL schema files (read-only in Go's module cache) into the cache entry. */
async function copySchema(schemaDir, env) {
  const go = env.GO_BINARY || 'go';
  const module = `${SERVER_MODULE}@v${TEMPORAL_SERVER_VERSION}`;
  let moduleDir;
  try {
    const { stdout } = await execFileAsync(go, ['mod', 'download', '-json', module], {
      env,
      timeout: 300_000,
      maxBuffer: 1 << 20,
    });
    moduleDir = JSON.parse(stdout).Dir;
  } catch (err) {
    throw new Error(`\`go mod download ${module}\` failed (is the Go module proxy reachable?): ${err.message}`);
  }
  const source = moduleDir ? path.join(moduleDir, 'schema', 'postgresql', 'v12') : undefined;
  if (!source || !fs.existsSync(source)) throw new Error(`no PostgreSQL schema in ${moduleDir} (${module})`);
  // A copy left by an earlier attempt is read-only like its source: made writable before it is replaced.
  if (fs.existsSync(schemaDir)) makeWritable(schemaDir);
  fs.rmSync(schemaDir, { recursive: true, force: true });
  fs.cpSync(source, schemaDir, { recursive: true });
  // The module cache is read-only; the copy must be removable like the rest of the cache.
  makeWritable(schemaDir);
}

function makeWritable(p) {
  fs.chmodSync(p, fs.statSync(p).isDirectory() ? 0o755 : 0o644);
  if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) makeWritable(path.join(p, e));
}

/**
 * Returns the cluster binaries' paths, building what is missing (a few minutes, once per machine).
 * @param {{ env?: NodeJS.ProcessEnv, log?: (line: string) => void }} [options]
 */
export async function resolveTemporalServer(options = {}) {
  const env = options.env ?? process.env;
  const log = options.log ?? ((line) => process.stderr.write(`[temporal-server] ${line}\n`));
  const paths = temporalServerPaths(env);
  if (!complete(paths)) {
    const dir = path.dirname(paths.server);
    fs.mkdirSync(dir, { recursive: true });
    await withCacheLock(dir, { log, what: 'building the Temporal server' }, async () => {
      if (complete(paths)) return;
      for (const [target, pkg] of [
        [paths.server, `${SERVER_MODULE}/cmd/server@v${TEMPORAL_SERVER_VERSION}`],
        [paths.sqlTool, `${SERVER_MODULE}/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}`],
      ]) {
        if (isExecutable(target)) continue;
        const built = await goInstall(pkg, target, { env, log, what: pkg });
        if (!built.ok) {
          throw new Error(
            `Could not build the Temporal server ${TEMPORAL_SERVER_VERSION}: ${built.reason}. ` +
              'It needs Go 1.25 or later (https://go.dev/dl) with access to the Go module proxy; then run this again.',
          );
        }
      }
      await copySchema(paths.schemaDir, env);
    });
  }
  let uiServer;
  // A failed UI build is remembered for a day, so an unreachable proxy does not cost every start a build attempt.
  const uiFailed = `${paths.uiServer}.build-failed`;
  const failedRecently = Date.now() - (fs.statSync(uiFailed, { throwIfNoEntry: false })?.mtimeMs ?? 0) < 86_400_000;
  if (!isExecutable(paths.uiServer) && failedRecently) {
    log(`the Temporal Web UI is not available (its build failed within a day; delete ${uiFailed} to try again)`);
  } else if (!isExecutable(paths.uiServer)) {
    const dir = path.dirname(paths.uiServer);
    fs.mkdirSync(dir, { recursive: true });
    await withCacheLock(dir, { log, what: 'building the Temporal Web UI' }, async () => {
      if (isExecutable(paths.uiServer)) return;
      const built = await goInstall(`${UI_PACKAGE}@v${TEMPORAL_UI_VERSION}`, paths.uiServer, {
        env,
        log,
        what: `Temporal UI ${TEMPORAL_UI_VERSION}`,
      });
      if (!built.ok) {
        fs.writeFileSync(uiFailed, `${built.reason}\n`);
        log(`the Temporal Web UI is not available (${built.reason}); the cluster runs without it`);
      }
    });
  }
  if (isExecutable(paths.uiServer)) uiServer = paths.uiServer;
  return { server: paths.server, sqlTool: paths.sqlTool, schemaDir: paths.schemaDir, uiServer };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  resolveTemporalServer().then(
    (p) => process.stdout.write(`${JSON.stringify(p, null, 2)}\n`),
    (err) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
