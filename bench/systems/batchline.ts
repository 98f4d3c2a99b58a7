// batchline as a user runs it: the Temporal dev server, one worker process and one API process (the compiled
// CLI, as `npm start` runs them), driven only through the public HTTP API.
import { predictFor } from '../lib/predict-stream.js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { DEV_WORKERS, resolveTemporalCli } from '../../src/cli/dev.js';
import { childEnv, WORKER_PROCESS_ENV } from '../../src/cluster/topology.js';
import { configToEnv, loadConfig, type Config } from '../../src/config.js';
import type { BatchOptions } from '../../src/contracts/batch.js';
import { startDevServer, type DevServer } from '../../src/dev-server.js';
import type { DynamicConfig } from '../../src/dynamic-config.js';
import { freePort } from '../../src/free-port.js';
import { openItemStore } from '../../src/stores/open-stores.js';
import { readSse } from '../../test/helpers/sse.js';
import { batchExecutionsSince } from '../lib/chunk-timeline.js';
import { cpuOfTrees, cpuSeconds, cpuSince, peakRssMb, type CpuTrees } from '../lib/system-run.js';
import { REPO_ROOT } from '../lib/report.js';
import type { SystemRun } from '../lib/system-run.js';
import { connectTemporal } from '../../src/client/connection.js';

export interface BatchlineStack {
  config: Config;
  apiUrl: string;
  /** The batch worker (the one process whose CPU and memory the figures count), as the stack's layout runs it. */
  worker: ChildProcess;
  /** The interactive worker (online predictions), absent with `workers: 'one'`. */
  interactiveWorker?: ChildProcess;
  api: ChildProcess;
  temporal: DevServer;
  stop(): Promise<void>;
}

export interface BatchlineRun extends SystemRun {
  apiPeakRssMb: number;
  /** CPU seconds per 1,000 items spent by each process: where the time went. */
  cpuPerThousandItems: { temporal: number; worker: number; api: number };
  /**
   * Time to first result, split (ms, wall clocks of one machine): submission returned -> the first item to finish
   * started its attempt (workflow start, first workflow task, activity dispatch); that attempt (store read,
   * inference, store write); its store write -> the client read its SSE event (the API's poll and the stream).
   */
  firstResultSplitMs: { toStart: number; attempt: number; toClient: number };
  /** History events over every execution of the batch (parent, shards, continue-as-new runs). */
  historyEvents: { total: number; perItem: number; maxPerExecution: number; executions: number };
}

/**
 * batchline's chunked setting in every bench that runs chunked batches (compare, cluster, stores, first-result,
 * dashboard, profile-chunk): chunks of 5,000 items (the largest allowed) in shards of 20,000 (the largest allowed).
 * With a chunk's outcomes written on the store's thread, two shards' chunks run at once, and each chunk and each shard
 * costs the dev server and the worker a fixed share of CPU, so the largest chunk ran fastest (BENCHMARKS.md, "Chunked
 * items, 2026-12-03 (store thread)") and shards of 20,000 cut the dev server's CPU per item by a third to a half
 * against shards of one chunk ("Larger shards for chunked batches"); a smaller chunk keeps a chunk's retry and its
 * attempt's timeout to fewer items.
 */
export const CHUNKED_OPTIONS: Partial<BatchOptions> = { itemsPerActivity: 5000, concurrency: 512, shardSize: 20000 };
/**
 * The same chunks as local activities: each runs inside its shard's workflow task on the worker that holds it, so a
 * shard's next chunk starts without a trip through the server (no heartbeats; a dead worker's chunk runs again once
 * its workflow task times out).
 */
export const CHUNKED_LOCAL_OPTIONS: Partial<BatchOptions> = { ...CHUNKED_OPTIONS, itemActivities: 'local' };

/** How `batchline dev` runs its batch worker, for the reports: "nice 19 under SCHED_IDLE". */
export const BATCH_WORKER_PRIORITY = `nice ${DEV_WORKERS.batch.WORKER_NICE}${DEV_WORKERS.batch.WORKER_SCHED_IDLE === 'true' ? ' under SCHED_IDLE' : ''}`;

/**
 * Starts a dev server on free ports with a fresh data dir, then the compiled workers and API, and waits for /readyz.
 * Workers (`options.workers`, a WorkerLayout) as `batchline dev` runs them by default.
 * `dynamicConfig` overrides the dev server's DEV_SERVER_DYNAMIC_CONFIG, to measure a setting.
 */
export async function startBatchlineStack(
  env: Record<string, string> = {},
  options: StackOptions = {},
): Promise<BatchlineStack> {
  try {
    return await startStackOnce(env, options);
  } catch (err) {
    // A stack that fails to start is not a measurement; one failure must not end a long run. Said, and tried again.
    console.error(`stack did not start (${(err as Error).message}); starting a fresh one`);
    return startStackOnce(env, options);
  }
}

/**
 * Which worker processes a stack runs:
 * - `split` (the default): `batchline dev`'s, a batch worker at nice 19 under SCHED_IDLE (DEV_WORKERS) and an
 *   interactive worker;
 * - `split-normal-priority`: the same two processes, both at nice 0 under the normal scheduler (no SCHED_IDLE):
 *   isolation that does not lean on the OS, as on hosts or containers that give the batch worker no lower priority;
 * - `one`: one worker polling both queues at normal priority (the layout before the split, for comparison).
 */
export type WorkerLayout = 'split' | 'split-normal-priority' | 'one';

interface StackOptions {
  /** Default `split`. */
  workers?: WorkerLayout;
  dynamicConfig?: DynamicConfig;
  /** Node options of every batchline process (a profile: `--cpu-prof`). */
  execArgv?: string[];
  /** Settings over each worker's own (the layout's), replacing them (a tune step: `{ NODE_OPTIONS: '' }`). */
  workerEnv?: Record<string, string>;
}

/** Each layout's worker processes: the environment each is started with, batch worker first. */
const LAYOUT_WORKERS: Record<WorkerLayout, Record<string, string>[]> = {
  split: [DEV_WORKERS.batch, DEV_WORKERS.interactive],
  'split-normal-priority': [
    { WORKER_QUEUES: 'batch', WORKER_NICE: '0', WORKER_SCHED_IDLE: 'false', ...WORKER_PROCESS_ENV },
    { WORKER_QUEUES: 'interactive', WORKER_NICE: '0', WORKER_SCHED_IDLE: 'false', ...WORKER_PROCESS_ENV },
  ],
  one: [{ ...WORKER_PROCESS_ENV }],
};

async function startStackOnce(
  env: Record<string, string>,
  { workers = 'split', dynamicConfig, execArgv = [], workerEnv = {} }: StackOptions,
): Promise<BatchlineStack> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-bench-'));
  const temporal = await startDevServer({
    cliPath: await resolveTemporalCli(),
    dataDir,
    port: await freePort(),
    headless: true,
    dynamicConfig,
  });
  const apiPort = await freePort(); // after the dev server has bound its internal ports, so none of them is this one
  const config = loadConfig({
    TEMPORAL_ADDRESS: temporal.address,
    DATA_DIR: dataDir,
    MODEL_REPOSITORY: path.join(REPO_ROOT, 'models'),
    PORT: String(apiPort),
    WORKER_METRICS_PORT: '0',
    MAX_BATCH_ITEMS: '1000000',
    MAX_BODY_BYTES: String(512 * 1024 * 1024),
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    ...env,
  });
  const spawnCli = (command: 'worker' | 'api', extra: Record<string, string> = {}) =>
    spawn(process.execPath, [...execArgv, path.join(REPO_ROOT, 'bin', 'batchline.mjs'), command], {
      env: childEnv(process.env, configToEnv(config), extra),
      stdio: ['ignore', 'inherit', 'inherit'], // logs at LOG_LEVEL warn: only what went wrong
    });
  const [worker, interactiveWorker] = LAYOUT_WORKERS[workers].map((extra) =>
    spawnCli('worker', { ...extra, ...workerEnv }),
  ) as [ChildProcess, ChildProcess | undefined];
  const api = spawnCli('api');
  const children = [api, worker, ...(interactiveWorker ? [interactiveWorker] : [])];
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ready = await fetch(`${apiUrl}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    const gone = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (gone || Date.now() > deadline) {
      for (const c of children) c.kill('SIGKILL');
      await temporal.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
      throw new Error(
        gone
          ? `batchline ${gone.spawnargs.at(-1)} (pid ${gone.pid}) exited with ${gone.exitCode ?? gone.signalCode} before the stack was ready`
          : 'batchline did not become ready within 120 s',
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    config,
    apiUrl,
    worker,
    interactiveWorker,
    api,
    temporal,
    async stop() {
      const exited = (c: ChildProcess) =>
        c.exitCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()));
      for (const c of children) c.kill('SIGINT');
      await Promise.all(children.map(exited));
      await temporal.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Submits the items as one NDJSON batch, takes the first `item.succeeded` from the SSE stream, waits for the
 * batch to end, and reads timings from the item store and history sizes from Temporal's visibility. `cpuTrees`:
 * process trees whose CPU to measure over the same window as the stack's own (SystemRun.treeCpuSeconds).
 */
export async function runBatchline(
  stack: BatchlineStack,
  model: string,
  items: Record<string, unknown>[],
  options: Partial<BatchOptions>,
  system: string,
  cpuTrees?: CpuTrees,
): Promise<BatchlineRun> {
  const body = items.map((inputs) => JSON.stringify({ inputs })).join('\n');
  const query = new URLSearchParams({
    model,
    ...Object.fromEntries(Object.entries(options).map(([k, v]) => [k, String(v)])),
  });
  const pids = { temporal: stack.temporal.child.pid!, worker: stack.worker.pid!, api: stack.api.pid! };
  const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid) ?? NaN]));
  const treesBefore = cpuOfTrees(cpuTrees);
  const t0 = performance.now();
  const res = await fetch(`${stack.apiUrl}/v1/batches?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body,
  });
  const submitted = performance.now();
  const returnedAtMs = Date.now();
  const created = (await res.json()) as { id: string };
  if (res.status !== 202) throw new Error(`submission failed: ${res.status} ${JSON.stringify(created)}`);
  const submittedAtMs = Date.now() - (performance.now() - t0);

  // Time to the first result a client sees: the first item event on the live stream.
  const stop = new AbortController();
  let firstSeenMs = NaN; // after submission returned
  for await (const e of readSse(`${stack.apiUrl}/v1/batches/${created.id}/events`, { signal: stop.signal })) {
    if (e.event === 'item.succeeded' || e.event === 'item.failed') {
      firstSeenMs = performance.now() - submitted;
      break;
    }
  }
  stop.abort();

  for (;;) {
    const res = await fetch(`${stack.apiUrl}/v1/batches/${created.id}`);
    const state = (await res.json()) as { status?: string };
    // A 503 (the worker busy or restarting) says nothing about the batch's end: ask again. Any other error ends the run.
    if (res.status !== 503 && !res.ok) throw new Error(`batch status: ${res.status} ${JSON.stringify(state)}`);
    if (res.ok && state.status !== 'running') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const cpu = (k: keyof typeof pids) =>
    Math.round((((cpuSeconds(pids[k]) ?? NaN) - cpuBefore[k]!) / items.length) * 1000 * 1000) / 1000;
  const cpuPerThousandItems = { temporal: cpu('temporal'), worker: cpu('worker'), api: cpu('api') };
  const treeCpuSeconds = cpuSince(treesBefore, cpuTrees);
  const workerPeakRssMb = peakRssMb(stack.worker.pid!) ?? NaN;
  const apiPeakRssMb = peakRssMb(stack.api.pid!) ?? NaN;

  const store = await openItemStore(stack.config);
  const latencyMs: number[] = [];
  let lastFinished = 0;
  let failed = 0;
  let first = { startedAt: Infinity, finishedAt: Infinity };
  try {
    for (let cursor: number | undefined = 0; cursor !== undefined;) {
      const page = await store.listResults(created.id, { cursor, limit: 10_000 });
      for (const r of page.results) {
        const finished = Date.parse(r.finishedAt);
        latencyMs.push(finished - Date.parse(r.startedAt));
        lastFinished = Math.max(lastFinished, finished);
        if (finished < first.finishedAt) first = { startedAt: Date.parse(r.startedAt), finishedAt: finished };
        if (r.status === 'failed') failed++;
      }
      cursor = page.nextCursor;
    }
  } finally {
    await store.close();
  }
  return {
    system,
    items: items.length,
    submitMs: submitted - t0,
    wallMs: lastFinished - submittedAtMs,
    firstResultMs: submitted - t0 + firstSeenMs,
    latencyMs,
    workerPeakRssMb,
    failed,
    apiPeakRssMb,
    cpuPerThousandItems,
    firstResultSplitMs: {
      toStart: first.startedAt - returnedAtMs,
      attempt: first.finishedAt - first.startedAt,
      toClient: firstSeenMs - (first.finishedAt - returnedAtMs),
    },
    historyEvents: await historyEvents(stack, items.length, new Date(submittedAtMs - 1000)),
    ...(treeCpuSeconds ? { treeCpuSeconds } : {}),
  };
}

/**
 * History length of every execution of a batch started since `since` (runs are sequential, so: the batch's parent,
 * shards and runs, also on a cluster that ran earlier batches). Until 2026-12-03 this counted the parent's
 * executions only (the shards are shardWorkflow): events/item figures in BENCHMARKS.md before that left them out.
 */
async function historyEvents(
  stack: BatchlineStack,
  items: number,
  since: Date,
): Promise<BatchlineRun['historyEvents']> {
  const connection = await connectTemporal(stack.config.TEMPORAL_ADDRESS);
  try {
    const client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
    let total = 0;
    let max = 0;
    let executions = 0;
    for await (const wf of client.workflow.list({ query: batchExecutionsSince(since) })) {
      total += wf.historyLength;
      max = Math.max(max, wf.historyLength);
      executions++;
    }
    return { total, perItem: Math.round((total / items) * 100) / 100, maxPerExecution: max, executions };
  } finally {
    await connection.close();
  }
}

/**
 * Sync predict at a steady rate (open loop: requests start on schedule whether or not earlier ones returned) for
 * `durationMs`; returns the latency in ms of each request answered 200 (bench/lib/predict-stream.ts sends them).
 */
export async function measurePredict(
  apiUrl: string,
  model: string,
  inputs: Record<string, unknown>[],
  ratePerSecond: number,
  durationMs: number,
): Promise<number[]> {
  const outcomes = await predictFor({ apiUrl, model, inputs, ratePerSecond, timeoutMs: 30_000 }, durationMs);
  return outcomes.filter((o) => o.status === 200).map((o) => o.latencyMs);
}
