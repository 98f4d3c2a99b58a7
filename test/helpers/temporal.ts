// Test harness: the real Temporal dev server binary on free ports with its own data dir, workers and the API.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { Client } from '@temporalio/client';
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { resolveTemporalCli } from '../../src/cli/dev.js';
import { configToEnv, loadConfig, type Config } from '../../src/config.js';
import { startDevServer, type DevServer } from '../../src/dev-server.js';
import { freePort, freePortBetween } from '../../src/free-port.js';
import { createLogger, routeTemporalLogs } from '../../src/logger.js';
import { connectTemporal } from '../../src/client/connection.js';

export { freePort };

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const testLog = createLogger(process.env.TEST_LOG_LEVEL ?? 'warn', 'test');

let runtimeInstalled = false;
/** Routes the SDK's logs through the quiet test logger (once per process, before any worker or connection). */
export function quietTemporalLogs(): void {
  if (runtimeInstalled) return;
  routeTemporalLogs(testLog);
  runtimeInstalled = true;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `batchline-${prefix}-`));
}

/** Polls `check` until it returns a truthy value; fails with `what` after the deadline. No fixed sleeps. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 60_000,
  everyMs = 100,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface TestTemporal {
  address: string;
  dataDir: string;
  server: DevServer;
  /** Stops the server and starts it again on the same port with the same SQLite file. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the real dev server (headless) on a free port with a fresh data dir. */
export async function startTestTemporal(): Promise<TestTemporal> {
  const cliPath = await resolveTemporalCli();
  const dataDir = tempDir('temporal');
  // Below the kernel's ephemeral range, where the dev server picks its other services' ports: they cannot meet ours.
  const port = await freePortBetween(20_000, 32_767);
  const start = () => startDevServer({ cliPath, dataDir, port, headless: true });
  const handle: TestTemporal = {
    address: `127.0.0.1:${port}`,
    dataDir,
    server: await start(),
    async restart() {
      await handle.server.stop();
      handle.server = await start();
    },
    async stop() {
      await handle.server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}

/**
 * Registers, in the calling `describe`, a before hook that starts the dev server (with quiet SDK logs) and a client
 * of it, and an after hook that closes both. The returned object holds them once the before hook has run.
 */
export function useTestTemporal(): { temporal: TestTemporal; client: Client } {
  const ctx = {} as { temporal: TestTemporal; client: Client };
  before(async () => {
    quietTemporalLogs();
    ctx.temporal = await startTestTemporal();
    ctx.client = new Client({ connection: await connectTemporal(ctx.temporal.address) });
  });
  after(async () => {
    await ctx.client?.connection.close();
    await ctx.temporal?.stop();
  });
  return ctx;
}

let counter = 0;
/** A config for one test: its own task queue, the repo's models, the given Temporal address. */
export function testConfig(address: string, env: Record<string, string> = {}): Config {
  const queue = `test-${process.pid}-${Date.now()}-${counter++}`;
  return loadConfig({
    TEMPORAL_ADDRESS: address,
    TASK_QUEUE: `${queue}`,
    INTERACTIVE_TASK_QUEUE: `${queue}-interactive`,
    MODEL_REPOSITORY: path.join(ROOT, 'models'),
    DATA_DIR: tempDir('data'),
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    WORKER_METRICS_PORT: '0',
    ...env,
  });
}

let bundle: Promise<WorkflowBundle> | undefined;
/** The workflow bundle, built once per test process, so in-process workers start fast. */
export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: path.join(ROOT, 'workflows', 'index.ts'),
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  return bundle;
}

/**
 * Runs `batchline <command>` from source as a child process, the way production runs it. `cwd` (default: the repo)
 * is its working directory; tsx and the repo's tsconfig are found by absolute path, so any directory works.
 */
export function spawnBatchline(
  command: string,
  config: Config,
  extraEnv: Record<string, string> = {},
  { cwd = ROOT }: { cwd?: string } = {},
): ChildProcess {
  const env: NodeJS.ProcessEnv = { TSX_TSCONFIG_PATH: path.join(ROOT, 'tsconfig.json'), ...process.env, ...extraEnv };
  Object.assign(env, configToEnv(config));
  const tsx = import.meta.resolve('tsx');
  const child = spawn(process.execPath, ['--import', tsx, path.join(ROOT, 'src', 'cli', 'main.ts'), command], {
    env,
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  const keep = (b: Buffer) => {
    out.push(b.toString());
    if (out.length > 200) out.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  Object.assign(child, { output: () => out.join('') });
  return child;
}

/** The recent output of a child started by spawnBatchline (for failure messages). */
export function outputOf(child: ChildProcess): string {
  return (child as ChildProcess & { output?: () => string }).output?.() ?? '';
}

export function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}
