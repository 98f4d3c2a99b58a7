// One server process started by batchline (the Temporal dev server, the Temporal server, its Web UI): its output
// line by line, a readiness check, and a stop that escalates to SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Connection } from '@temporalio/client';
import { connectTemporal } from './client/connection.js';

export interface ServerProcessOptions {
  /** Names the process in errors: "temporal server start-dev", "the Temporal server". */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Receives the process's output, line by line. Default: dropped. */
  onLine?: (line: string) => void;
  /** Resolves true once the process serves (polled every 200 ms). */
  ready: () => Promise<boolean>;
  /** How long to wait for ready() (default 60 s). */
  readyTimeoutMs?: number;
}

export interface ServerProcess {
  child: ChildProcess;
  /** Resolves with the exit code (null after a signal) when the process ends, for whatever reason. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 10 s). */
  stop(graceMs?: number): Promise<void>;
}

/** The process ended before it was ready (as opposed to not answering in time). */
export class ServerExitedError extends Error {}

/** Spawns the process and resolves once ready() answers true; throws (with the output's tail) if it never does. */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const child = spawn(options.command, options.args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  // The first lines and the last: a Go panic's message comes first, before a long stack.
  const head: string[] = [];
  const tail: string[] = [];
  let dropped = 0;
  const onData = (buf: Buffer) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      if (head.length < 20) head.push(line);
      else {
        tail.push(line);
        if (tail.length > 20) (tail.shift(), dropped++);
      }
      options.onLine?.(line);
    }
  };
  const output = () => [...head, ...(dropped ? [`[${dropped} lines left out]`] : []), ...tail].join('\n');
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);

  const stop = (graceMs = 10_000) => stopChild(child, graceMs);

  const timeoutMs = options.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void exited.then(() => (ended = true));
  // Ready means our process serves: another that answers on the same port while ours died (address in use) is not.
  while (!(await options.ready()) || ended) {
    if (ended) {
      throw new ServerExitedError(`${options.name} exited with ${child.exitCode ?? child.signalCode}:\n${output()}`);
    }
    if (Date.now() > deadline) {
      await stop(2000);
      throw new Error(`${options.name} was not ready within ${timeoutMs} ms:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, exited, stop };
}

/** SIGTERM to a child process, SIGKILL after graceMs; resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** True when a Temporal frontend at `address` answers a gRPC health check within timeoutMs. */
export async function isTemporalReachable(address: string, timeoutMs = 2000): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await connectTemporal(address, { connectTimeout: timeoutMs });
    const res = await connection.withDeadline(Date.now() + timeoutMs, () => connection!.healthService.check({}));
    return res.status === 1; // SERVING
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}
