import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Config } from '../config.js';
import { printLine } from './output.js';
import { childEnv, WORKER_PROCESS_ENV } from '../cluster/topology.js';
import { startDevServer, type DevServer } from '../dev-server.js';
import { isTemporalReachable, stopChild } from '../server-process.js';

/** The repository root (holds package.json), from src/ or dist/src/. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the batchline project root');
    dir = up;
  }
  return dir;
}

/** Resolves the pinned Temporal CLI with scripts/temporal-cli.mjs (cached after the first build). */
export async function resolveTemporalCli(): Promise<string> {
  const script = pathToFileURL(path.join(projectRoot(), 'scripts', 'temporal-cli.mjs')).href;
  const mod = (await import(script)) as typeof import('../../scripts/temporal-cli.mjs');
  return mod.resolveTemporalCli();
}

/**
 * The two worker processes `batchline dev` runs. Online predictions get a process of their own, so they never wait
 * on a batch's event loop or workflow thread. The batch worker runs at nice 19 under SCHED_IDLE (Linux), so a batch
 * that saturates the CPU yields it to predictions, the API and the Temporal server: nice alone only weights the batch
 * worker down, while the kernel preempts a SCHED_IDLE thread as soon as any normal thread wakes (see
 * cpu-priority.ts). BENCHMARKS.md, sync predict under load, has the measurements behind these settings.
 */
export const DEV_WORKERS = {
  batch: { WORKER_QUEUES: 'batch', WORKER_NICE: '19', WORKER_SCHED_IDLE: 'true', ...WORKER_PROCESS_ENV },
  interactive: { WORKER_QUEUES: 'interactive', WORKER_NICE: '0', ...WORKER_PROCESS_ENV },
} as const satisfies Record<string, Record<string, string>>;

type Source = 'temporal' | 'worker' | 'interactive' | 'api' | 'dev';

function pipeLines(source: Source, stream: NodeJS.ReadableStream | null): void {
  if (!stream) return;
  readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    if (line.trim()) printLine(source, line);
  });
}

/** Spawns `batchline <command>` as a child with an IPC channel, so it exits if this supervisor disappears. */
function spawnSelf(command: 'worker' | 'api', source: Source, env: NodeJS.ProcessEnv): ChildProcess {
  const entry = process.argv[1]!;
  const child = spawn(process.execPath, [...process.execArgv, entry, command], {
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  pipeLines(source, child.stdout);
  pipeLines(source, child.stderr);
  return child;
}

/** Polls `url` until it answers 2xx; false after timeoutMs or once alive() turns false. */
export async function waitForHttp(url: string, timeoutMs: number, alive: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && alive()) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * When `batchline dev` starts a process again after it exited on its own: after 1 s, then 2, 4, 8 and 16 s, as it
 * exits again within RESTART_WINDOW_MS; once it has exited more than RESTART_LIMIT times in that window (a crash loop,
 * which a restart would not mend), never.
 */
export const RESTART_LIMIT = 5;
export const RESTART_WINDOW_MS = 10 * 60_000;

/** One process's exits, and the delay before its next start. */
export class RestartPolicy {
  private exits: number[] = [];

  /** Records an exit at `now`: the delay before the next start, or undefined once the process is in a crash loop. */
  next(now = Date.now()): number | undefined {
    this.exits = this.exits.filter((t) => now - t < RESTART_WINDOW_MS);
    this.exits.push(now);
    if (this.exits.length > RESTART_LIMIT) return undefined;
    return 1000 * 2 ** (this.exits.length - 1);
  }

  /** Exits counted in the window (for the log). */
  get count(): number {
    return this.exits.length;
  }
}

/** The processes `batchline dev` starts, as its log names them. */
const NAMES: Record<Exclude<Source, 'dev'>, string> = {
  temporal: 'Temporal dev server',
  worker: 'batch worker',
  interactive: 'interactive worker',
  api: 'API',
};

/**
 * `batchline dev` (what `npm start` runs): the Temporal dev server unless one already answers at
 * TEMPORAL_ADDRESS, then the batch worker, the interactive worker (DEV_WORKERS) and the API, each a process with
 * prefixed logs. Once the API answers, a process that exits on its own is started again (RestartPolicy): a dead
 * worker's unfinished items run again on the new one (docs/operations.md says how), and the dev server keeps its
 * state in DATA_DIR. A process that exits before then (a start-up fault: a port in use, a bad setting), or in a crash loop,
 * stops them all with exit code 1. Ctrl-C stops them all.
 */
export async function runDev(config: Config): Promise<number> {
  const log = (msg: string) => printLine('dev', msg);
  let server: DevServer | undefined;
  let stopping = false;
  /** The API has answered: from now on a process that exits is started again. */
  let up = false;
  /** The dev server being started again, if it is. */
  let serverStarting: Promise<void> | undefined;
  let exitCode = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const timers = new Set<NodeJS.Timeout>();
  const children = new Map<'worker' | 'interactive' | 'api', ChildProcess>();
  const stopAll = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    log(`stopping (${reason})`);
    for (const t of timers) clearTimeout(t);
    await Promise.all([...children.values()].map((c) => stopChild(c, 15_000)));
    await serverStarting?.catch(() => undefined); // a dev server starting again is stopped once it has started
    await server?.stop();
    resolveDone();
  };
  const policies = new Map<keyof typeof NAMES, RestartPolicy>();
  /** Starts `source` again after its policy's delay, or stops everything (before start-up ends, or in a loop). */
  const exited = (source: keyof typeof NAMES, how: string | number | null, restart: () => Promise<void>) => {
    if (stopping) return;
    const name = NAMES[source];
    if (!up) return void stopAll(`the ${name} exited with ${how} while starting`, 1);
    const policy = policies.get(source) ?? policies.set(source, new RestartPolicy()).get(source)!;
    const delay = policy.next();
    if (delay === undefined) {
      return void stopAll(`the ${name} exited ${policy.count} times within ${RESTART_WINDOW_MS / 60_000} minutes`, 1);
    }
    log(`the ${name} exited with ${how}; starting it again in ${delay / 1000} s`);
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (stopping) return;
      restart().then(
        () => log(`started the ${name} again`),
        (err: Error) => void stopAll(`the ${name} did not start again: ${err.message.split('\n')[0]}`, 1),
      );
    }, delay);
    timers.add(timer);
  };

  const devServerOptions = async () => {
    const [host, port] = config.TEMPORAL_ADDRESS.split(':') as [string, string];
    return {
      cliPath: await resolveTemporalCli(),
      dataDir: config.DATA_DIR,
      host,
      port: Number(port),
      uiPort: config.TEMPORAL_UI_PORT,
      namespace: config.TEMPORAL_NAMESPACE,
      // Once stopping, the server's shutdown chatter (failed polls, refused dials) is noise.
      onLine: (line: string) => stopping || printLine('temporal', line),
    };
  };
  const watchServer = (s: DevServer) => {
    server = s;
    void s.exited.then((code) => {
      if (server === s) exited('temporal', code ?? s.child.signalCode, startServer);
    });
  };
  const startServer = () => {
    serverStarting = devServerOptions()
      .then(startDevServer)
      .then(watchServer)
      .finally(() => (serverStarting = undefined));
    return serverStarting;
  };
  if (await isTemporalReachable(config.TEMPORAL_ADDRESS)) {
    log(`using the Temporal server already answering at ${config.TEMPORAL_ADDRESS}`);
  } else {
    const options = await devServerOptions();
    log(`starting the Temporal dev server (${options.cliPath}), state in ${path.join(config.DATA_DIR, 'temporal.db')}`);
    watchServer(await startDevServer(options));
  }

  // The interactive worker serves its /metrics on the next port (or a free one when WORKER_METRICS_PORT is 0).
  const interactiveMetricsPort = config.WORKER_METRICS_PORT === 0 ? 0 : config.WORKER_METRICS_PORT + 1;
  const commands: Record<'worker' | 'interactive' | 'api', () => ChildProcess> = {
    worker: () => spawnSelf('worker', 'worker', childEnv(process.env, DEV_WORKERS.batch)),
    interactive: () =>
      spawnSelf(
        'worker',
        'interactive',
        childEnv(process.env, DEV_WORKERS.interactive, { WORKER_METRICS_PORT: String(interactiveMetricsPort) }),
      ),
    api: () => spawnSelf('api', 'api', { ...process.env }),
  };
  const startChild = (source: keyof typeof commands) => {
    const child = commands[source]();
    children.set(source, child);
    child.once('exit', (code, signal) => exited(source, code ?? signal, async () => startChild(source)));
  };
  for (const source of Object.keys(commands) as (keyof typeof commands)[]) startChild(source);
  process.once('SIGINT', () => void stopAll('SIGINT', 0));
  process.once('SIGTERM', () => void stopAll('SIGTERM', 0));

  const apiUrl = `http://${config.HOST}:${config.PORT}`;
  if (await waitForHttp(`${apiUrl}/healthz`, 120_000, () => !stopping)) {
    up = true;
    log('batchline is up');
    log(`  API          ${apiUrl}   (try: curl ${apiUrl}/healthz)`);
    log(`  Temporal     ${config.TEMPORAL_ADDRESS}   namespace ${config.TEMPORAL_NAMESPACE}`);
    if (server?.uiUrl) log(`  Temporal UI  ${server.uiUrl}`);
    log(`  models       ${config.MODEL_REPOSITORY}`);
    log('Press Ctrl-C to stop.');
  } else if (!stopping) {
    await stopAll(`the API did not answer at ${apiUrl}/healthz`, 1);
  }
  await done;
  return exitCode;
}
