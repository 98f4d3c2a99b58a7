// The graphile-worker peer of the side-by-side benchmark, the PostgreSQL analogue of the BullMQ peer: one job per
// item in graphile-worker's queue, `maxAttempts: 5`, the same model run through the same runtime code in separate
// worker processes (bench/systems/graphile-worker.ts), results stored the same way. Jobs and items live in one
// PostgreSQL database: the submitter writes the items into batchline's PostgreSQL item store (claim check), and
// jobs carry only `{ batchId, index }`; the submission is that write plus graphile-worker's bulk `addJobs` in
// chunks. graphile-worker's schema is migrated before the clock starts. Completion is watched in the store's event
// log; per-item latency and the first result come from the stored results, as for BullMQ.
//
//   node --import tsx bench/systems/graphile.ts --smoke [--workers N] [--database-url URL]
//   (2,000 digits items: a by-hand check, not a benchmark; without --database-url on a throwaway PostgreSQL)
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeWorkerUtils, type WorkerUtils } from 'graphile-worker';
import { BatchOptions, type ItemInputs } from '../../src/contracts/batch.js';
import { PostgresItemStore } from '../../src/stores/postgres-item-store.js';
import { intArg, parseBenchArgs } from '../lib/args.js';
import { REPO_ROOT } from '../lib/report.js';
import { stopWorker, untilReady, waitForOutcomes } from '../lib/peer-workers.js';
import {
  cpuOfTrees,
  cpuSince,
  formatRun,
  peakRssMb,
  percentile,
  type CpuTrees,
  type SystemRun,
} from '../lib/system-run.js';
import type { ItemJob } from './graphile-worker.js';

export interface GraphileRunOptions {
  model: string;
  items: ItemInputs[];
  /** Worker processes (default 1). */
  workers?: number;
  /** Jobs in flight per worker process (graphile-worker's concurrency). */
  concurrency: number;
  /**
   * A PostgreSQL database used by no other run meanwhile. It holds both graphile-worker's schema (migrated here)
   * and batchline's item store (migrated by the store's own code).
   */
  databaseUrl: string;
  modelRepository: string;
  /** Give up when no result has been stored for this long (default 60 s). */
  stallTimeoutMs?: number;
  /** The batch's id in the item store (default: `graphile-<uuid>`). */
  batchId?: string;
  /** Keep the batch in the item store after the run (default false: deleted, so rounds in one database do not grow it). */
  keepBatch?: boolean;
  /** Process trees whose CPU the run measures (SystemRun.treeCpuSeconds). */
  cpuTrees?: CpuTrees;
  /**
   * Items of an untimed batch run first through the same worker processes (then deleted), so the timed batch finds
   * them warm, as the other systems of a comparison are warmed (cluster.ts).
   */
  warmUp?: ItemInputs[];
}

/** Jobs per addJobs call (one `graphile_worker.add_jobs` statement). */
const ENQUEUE_CHUNK = 1000;
const MAX_ATTEMPTS = 5;
/** Connections each worker process's item store opens, besides its listening one (DATABASE_POOL_SIZE's default). */
const WORKER_STORE_POOL = 10;
const WORKER_FILE = fileURLToPath(new URL('./graphile-worker.ts', import.meta.url));

export async function runGraphile(opts: GraphileRunOptions): Promise<SystemRun> {
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
    throw new Error(`concurrency must be a positive integer, got ${opts.concurrency}`);
  }
  if (opts.items.length === 0) throw new Error('items must not be empty');

  const batchId = opts.batchId ?? `graphile-${randomUUID()}`;
  // A task of its own per batch, as the BullMQ peer has a queue of its own: no other run's jobs reach these workers.
  const task = `bench-${batchId}`;
  const store = await PostgresItemStore.open(opts.databaseUrl);
  let utils: WorkerUtils | undefined;
  const children: ChildProcess[] = [];
  const jobIds: string[] = [];
  try {
    utils = await makeWorkerUtils({ connectionString: opts.databaseUrl, maxPoolSize: 2 });
    await utils.migrate();
    const poolSize = await workerPoolSize(utils, workers, opts.concurrency);
    for (let w = 0; w < workers; w++) children.push(await spawnWorker(task, poolSize, opts));

    // Submission: the claim check, then one job per item; the time its item store write took.
    const submit = async (id: string, items: ItemInputs[]): Promise<number> => {
      const started = Date.now();
      await store.createBatch(
        {
          id,
          model: opts.model,
          total: items.length,
          options: BatchOptions.parse({ maxAttempts: MAX_ATTEMPTS }),
          createdAt: new Date(started).toISOString(),
          tenant: 'default',
        },
        items.map((inputs) => ({ inputs })),
      );
      const stored = Date.now();
      for (let from = 0; from < items.length; from += ENQUEUE_CHUNK) {
        const count = Math.min(ENQUEUE_CHUNK, items.length - from);
        const jobs = await utils!.addJobs(
          Array.from({ length: count }, (_, i) => ({
            identifier: task,
            payload: { batchId: id, index: from + i } satisfies ItemJob,
            maxAttempts: MAX_ATTEMPTS,
          })),
        );
        for (const job of jobs) jobIds.push(job.id);
      }
      return stored;
    };
    const stallTimeoutMs = opts.stallTimeoutMs ?? 60_000;
    if (opts.warmUp && opts.warmUp.length > 0) {
      const warmUpId = `${batchId}-warm-up`;
      await submit(warmUpId, opts.warmUp);
      await waitForOutcomes(store, warmUpId, opts.warmUp.length, children, stallTimeoutMs, 'graphile');
      await store.deleteBatch(warmUpId);
    }

    const cpuBefore = cpuOfTrees(opts.cpuTrees);
    const t0 = Date.now();
    const total = opts.items.length;
    const stored = await submit(batchId, opts.items);
    const submitted = Date.now();

    await waitForOutcomes(store, batchId, total, children, stallTimeoutMs, 'graphile');
    const treeCpuSeconds = cpuSince(cpuBefore, opts.cpuTrees);
    const workerPeakRssMb = Math.max(...children.map((c) => peakRssMb(c.pid!) ?? Number.NaN));

    const latencyMs: number[] = [];
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    let failed = 0;
    for (let cursor: number | undefined = 0; cursor !== undefined;) {
      const page = await store.listResults(batchId, { cursor, limit: 10_000 });
      for (const r of page.results) {
        const finished = Date.parse(r.finishedAt);
        latencyMs.push(finished - Date.parse(r.startedAt));
        first = Math.min(first, finished);
        last = Math.max(last, finished);
        if (r.status === 'failed') failed++;
      }
      cursor = page.nextCursor;
    }
    return {
      system: 'graphile',
      items: total,
      submitMs: submitted - t0,
      wallMs: last - t0,
      firstResultMs: first - t0,
      latencyMs,
      workerPeakRssMb,
      failed,
      detail: { storeWriteMs: stored - t0, enqueueMs: submitted - stored },
      ...(treeCpuSeconds ? { treeCpuSeconds } : {}),
    };
  } finally {
    await Promise.all(children.map(stopWorker));
    if (utils) {
      // Jobs left behind (failed for good, or never run after a stall) go, and then the batch's task identifier.
      for (let from = 0; from < jobIds.length; from += ENQUEUE_CHUNK) {
        await utils.completeJobs(jobIds.slice(from, from + ENQUEUE_CHUNK)).catch(() => undefined);
      }
      await utils.cleanup({ tasks: ['GC_TASK_IDENTIFIERS'] }).catch(() => undefined);
      await utils.release();
    }
    if (!opts.keepBatch) await store.deleteBatch(batchId);
    await store.close();
  }
}

/**
 * Connections per worker process for graphile-worker: its advice (10 or concurrency + 2, whichever is larger), or
 * less when what max_connections leaves (after the sessions open now, this process's included, and the worker
 * processes' item stores) cannot give every worker process that many.
 */
async function workerPoolSize(utils: WorkerUtils, workers: number, concurrency: number): Promise<number> {
  const wanted = Math.max(10, concurrency + 2);
  const { rows } = await utils.withPgClient((client) =>
    client.query<{ max: number; reserved: number; open: number }>(
      `SELECT current_setting('max_connections')::int AS max,
              current_setting('superuser_reserved_connections')::int AS reserved,
              (SELECT COUNT(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS open`,
    ),
  );
  const { max, reserved, open } = rows[0]!;
  // The utilities' second connection, and per worker process its item store's pool and listening connection.
  const free = max - reserved - open - 1 - workers * (WORKER_STORE_POOL + 1);
  const fits = Math.floor(free / workers);
  if (fits < 2) {
    throw new Error(`max_connections ${max} leaves ${free} connections for ${workers} graphile worker processes`);
  }
  return Math.min(wanted, fits);
}

/** Forks a worker process and resolves once its runner listens for new jobs. */
function spawnWorker(task: string, poolSize: number, opts: GraphileRunOptions): Promise<ChildProcess> {
  const child = fork(
    WORKER_FILE,
    ['--task', task, '--concurrency', String(opts.concurrency), '--pool-size', String(poolSize)],
    {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        DATABASE_URL: opts.databaseUrl,
        DATABASE_POOL_SIZE: String(WORKER_STORE_POOL),
        MODEL_REPOSITORY: opts.modelRepository,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  return untilReady(child, 'graphile');
}

/**
 * The by-hand check: 2,000 digits items (the held-out rows cycled) through `workers` worker processes, on the given
 * database or on a fresh database of a throwaway PostgreSQL server.
 */
async function smoke(workers: number, databaseUrl: string | undefined): Promise<void> {
  const rows = fs
    .readFileSync(path.join(REPO_ROOT, 'models', 'digits', 'testdata', 'heldout.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { inputs: ItemInputs; expected: { labelName: string } });
  const items = Array.from({ length: 2000 }, (_, i) => rows[i % rows.length]!.inputs);
  const batchId = `graphile-smoke-${randomUUID()}`;
  const t = Date.now();
  // Loaded only here: a run on a given database needs no embedded server.
  const server = databaseUrl ? undefined : await (await import('../../test/helpers/postgres.js')).startPostgres();
  const url = databaseUrl ?? (await server!.createDatabase());
  if (server) console.error(`postgres on port ${server.port} up in ${Date.now() - t} ms`);
  try {
    const run = await runGraphile({
      model: 'digits',
      items,
      workers,
      concurrency: 64,
      databaseUrl: url,
      modelRepository: path.join(REPO_ROOT, 'models'),
      batchId,
      keepBatch: true,
    });
    console.log(formatRun(run));
    // The results are batchline's: every item stored once, with the label the committed model gives it.
    const store = await PostgresItemStore.open(url, { poolSize: 1 });
    try {
      let wrong = 0;
      let stored = 0;
      for (let cursor: number | undefined = 0; cursor !== undefined;) {
        const page = await store.listResults(batchId, { cursor, limit: 10_000 });
        stored += page.results.length;
        wrong += page.results.filter((r) => r.result?.label !== rows[r.index % rows.length]!.expected.labelName).length;
        cursor = page.nextCursor;
      }
      console.log(`stored ${stored} results, ${wrong} with a label other than the expected one`);
      await store.deleteBatch(batchId);
    } finally {
      await store.close();
    }
    console.log(
      JSON.stringify({
        ...run,
        latencyMs: undefined,
        p50Ms: percentile(run.latencyMs, 50),
        p99Ms: percentile(run.latencyMs, 99),
        maxMs: percentile(run.latencyMs, 100),
      }),
    );
  } finally {
    await server?.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const USAGE =
    'usage: node --import tsx bench/systems/graphile.ts --smoke [--workers N] [--database-url URL]\n' +
    '  (2,000 digits items: a by-hand check; without --database-url on a throwaway PostgreSQL)';
  const { values } = parseBenchArgs(USAGE, {
    options: {
      smoke: { type: 'boolean', default: false },
      workers: { type: 'string', default: '1' },
      'database-url': { type: 'string' },
    },
  });
  if (!values.smoke) {
    console.error(USAGE);
    process.exit(2);
  }
  await smoke(intArg(USAGE, 'workers', values.workers), values['database-url']);
}
