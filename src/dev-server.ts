import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { devServerSearchAttributeFlags } from './client/search-attributes.js';

export interface DevServerOptions {
  /** Path of the Temporal CLI binary (see scripts/temporal-cli.mjs). */
  cliPath: string;
  /** The server's SQLite file goes here as temporal.db, so state survives restarts. */
  dataDir: string;
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Frontend gRPC port. */
  port: number;
  /** Web UI port; omit or set headless to run without the UI. */
  uiPort?: number;
  headless?: boolean;
  namespace?: string;
  /** Receives the server's output, line by line. Default: dropped. */
  onLine?: (line: string) => void;
  /** How long to wait for the frontend to answer (default 60 s). */
  readyTimeoutMs?: number;
  /** Dynamic config values on top of (or replacing) DEV_SERVER_DYNAMIC_CONFIG, e.g. to measure a setting. */
  dynamicConfig?: DynamicConfig;
}

/** Temporal dynamic config keys and their values, as `temporal server start-dev --dynamic-config-value` takes them. */
export type DynamicConfig = Record<string, string | number | boolean>;

/** The dynamic config the dev server runs with (see BENCHMARKS.md, tuning). */
export const DEV_SERVER_DYNAMIC_CONFIG: DynamicConfig = {
  // Eager activities: a workflow task's completion hands the worker its newly scheduled activities at once,
  // skipping a trip through matching (less server CPU and latency per item).
  'system.enableActivityEagerExecution': true,
  // The dev server has a single history shard, and by default its transfer queue (which hands new workflow and
  // activity tasks to matching) loads new tasks at most 20 times a second, a limit per shard that a cluster
  // multiplies by its many shards. With one shard, every sync predict and every new shard workflow waits for the
  // next load before its first workflow task, and waits longer while a batch keeps the queue busy.
  'history.transferProcessorMaxPollRPS': 1000,
  // While a workflow task runs, history buffers the events that arrive (a remote item's completion adds two:
  // started and completed). Above 100 (the server's default) it force-fails the running task
  // (WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND); the worker's completion then gets "Task not found" and the
  // shard is replayed from its history. A shard may have up to 512 items in flight (options.concurrency), so up to
  // 1,024 such events; the limit sits above that. A cluster needs the same setting.
  'history.maximumBufferedEventsBatch': 2000,
};

export interface DevServer {
  address: string;
  uiUrl?: string;
  child: ChildProcess;
  /** Resolves with the exit code when the process ends, for whatever reason. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 10 s). */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `temporal server start-dev` on the given ports with its SQLite file in dataDir; resolves once it answers. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  fs.mkdirSync(options.dataDir, { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(options.port),
    '--db-filename',
    path.join(options.dataDir, 'temporal.db'),
    '--namespace',
    namespace,
    // WAL: readers (visibility, UI) stop blocking the writer; NORMAL sync is durable across process crashes.
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
    ...Object.entries({ ...DEV_SERVER_DYNAMIC_CONFIG, ...options.dynamicConfig }).flatMap(([key, value]) => [
      '--dynamic-config-value',
      `${key}=${JSON.stringify(value)}`,
    ]),
    '--log-level',
    'warn',
    ...devServerSearchAttributeFlags(),
    ...(options.headless || options.uiPort === undefined ? ['--headless'] : ['--ui-port', String(options.uiPort)]),
  ];
  const child = spawn(options.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  const tail: string[] = [];
  const onData = (buf: Buffer) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      options.onLine?.(line);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);

  const address = `${host}:${options.port}`;
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  let ended = false;
  void exited.then(() => (ended = true));
  while (!(await isTemporalReachable(address, 1000))) {
    if (ended) {
      throw new Error(
        `temporal server start-dev exited with ${child.exitCode ?? child.signalCode}:\n${tail.join('\n')}`,
      );
    }
    if (Date.now() > deadline) {
      await stop(2000);
      throw new Error(
        `temporal server start-dev did not answer at ${address} within ${options.readyTimeoutMs ?? 60_000} ms:\n${tail.join('\n')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const uiUrl = options.headless || options.uiPort === undefined ? undefined : `http://${host}:${options.uiPort}`;
  return { address, uiUrl, child, exited, stop };
}

/** True when a Temporal frontend at `address` answers a gRPC health check within timeoutMs. */
export async function isTemporalReachable(address: string, timeoutMs = 2000): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    const res = await connection.withDeadline(Date.now() + timeoutMs, () => connection!.healthService.check({}));
    return res.status === 1; // SERVING
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}
