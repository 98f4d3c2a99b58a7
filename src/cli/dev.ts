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
 * `batchline dev` (what `npm start` runs): the Temporal dev server unless one already answers at
 * TEMPORAL_ADDRESS, then the batch worker, the interactive worker (DEV_WORKERS) and the API, each a process with
 * prefixed logs. Ctrl-C stops them all.
 */
export async function runDev(config: Config): Promise<number> {
  const log = (msg: string) => printLine('dev', msg);
  let server: DevServer | undefined;
  let stopping = false;
  let uiUrl: string | undefined;
  if (await isTemporalReachable(config.TEMPORAL_ADDRESS)) {
    log(`using the Temporal server already answering at ${config.TEMPORAL_ADDRESS}`);
  } else {
    const cliPath = await resolveTemporalCli();
    const [host, port] = config.TEMPORAL_ADDRESS.split(':') as [string, string];
    log(`starting the Temporal dev server (${cliPath}), state in ${path.join(config.DATA_DIR, 'temporal.db')}`);
    server = await startDevServer({
      cliPath,
      dataDir: config.DATA_DIR,
      host,
      port: Number(port),
      uiPort: config.TEMPORAL_UI_PORT,
      namespace: config.TEMPORAL_NAMESPACE,
      // Once stopping, the server's shutdown chatter (failed polls, refused dials) is noise.
      onLine: (line) => stopping || printLine('temporal', line),
    });
    uiUrl = server.uiUrl;
  }

  // The interactive worker serves its /metrics on the next port (or a free one when WORKER_METRICS_PORT is 0).
  const interactiveMetricsPort = config.WORKER_METRICS_PORT === 0 ? 0 : config.WORKER_METRICS_PORT + 1;
  const processes: [Source, ChildProcess][] = [
    ['worker', spawnSelf('worker', 'worker', childEnv(process.env, DEV_WORKERS.batch))],
    [
      'interactive',
      spawnSelf(
        'worker',
        'interactive',
        childEnv(process.env, DEV_WORKERS.interactive, { WORKER_METRICS_PORT: String(interactiveMetricsPort) }),
      ),
    ],
    ['api', spawnSelf('api', 'api', { ...process.env })],
  ];
  const children = processes.map(([, child]) => child);
  let exitCode = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stopAll = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    log(`stopping (${reason})`);
    await Promise.all(children.map((c) => stopChild(c, 15_000)));
    await server?.stop();
    resolveDone();
  };
  for (const [source, child] of processes) {
    child.once('exit', (code, signal) => {
      if (!stopping)
        void stopAll(`${source === 'interactive' ? 'interactive worker' : source} exited with ${code ?? signal}`, 1);
    });
  }
  void server?.exited.then((code) => {
    if (!stopping) void stopAll(`Temporal dev server exited with ${code}`, 1);
  });
  process.once('SIGINT', () => void stopAll('SIGINT', 0));
  process.once('SIGTERM', () => void stopAll('SIGTERM', 0));

  const apiUrl = `http://${config.HOST}:${config.PORT}`;
  if (await waitForHttp(`${apiUrl}/healthz`, 120_000, () => !stopping)) {
    log('batchline is up');
    log(`  API          ${apiUrl}   (try: curl ${apiUrl}/healthz)`);
    log(`  Temporal     ${config.TEMPORAL_ADDRESS}   namespace ${config.TEMPORAL_NAMESPACE}`);
    if (uiUrl) log(`  Temporal UI  ${uiUrl}`);
    log(`  models       ${config.MODEL_REPOSITORY}`);
    log('Press Ctrl-C to stop.');
  } else if (!stopping) {
    await stopAll(`the API did not answer at ${apiUrl}/healthz`, 1);
  }
  await done;
  return exitCode;
}
