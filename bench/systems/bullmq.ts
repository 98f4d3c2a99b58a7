// The BullMQ peer of the side-by-side benchmark: one job per item on a local Redis, `attempts: 5` with exponential
// backoff, the same model run through the same runtime code in separate worker processes
// (bench/systems/bullmq-worker.ts), results stored the same way. Like batchline, the submitter writes the items
// into the SQLite item store (claim check) and jobs carry only `{ batchId, index }`; the submission is that write
// plus `addBulk` in chunks. Completion is watched in the store's event log; per-item latency and the first result
// come from the stored results (BullMQ has no result stream: a client reads the store).
//
//   node --import tsx bench/systems/bullmq.ts --smoke     (2,000 digits items: a by-hand check, not a benchmark)
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { BatchOptions, type ItemInputs } from '../../src/contracts/batch.js';
import { itemStoreFile, SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { parseBenchArgs } from '../lib/args.js';
import { REPO_ROOT } from '../lib/report.js';
import { startRedis } from '../lib/redis.js';
import { stopWorker, untilReady, waitForOutcomes } from '../lib/peer-workers.js';
import { formatRun, peakRssMb, percentile, type SystemRun } from '../lib/system-run.js';
import type { ItemJob } from './bullmq-worker.js';

export interface BullmqRunOptions {
  model: string;
  items: ItemInputs[];
  /** Worker processes (default 1). */
  workers?: number;
  /** Jobs in flight per worker process (BullMQ Worker concurrency). */
  concurrency: number;
  /** A Redis used by nothing else during the run, e.g. from startRedis(). */
  redisUrl: string;
  /** Where the item store lives (`<dataDir>/batchline.db`, as batchline keeps it). */
  dataDir: string;
  modelRepository: string;
  /** Give up when no result has been stored for this long (default 60 s). */
  stallTimeoutMs?: number;
  /** The batch's id in the item store (default: `bullmq-<uuid>`). */
  batchId?: string;
  /** Keep the batch in the item store after the run (default false: deleted, so rounds in one dataDir do not grow it). */
  keepBatch?: boolean;
  /**
   * Items of an untimed batch run first through the same workers and queue (then deleted), so the timed batch finds
   * them warm, as the other systems of a comparison are warmed (compare.ts).
   */
  warmUp?: ItemInputs[];
}

/** Jobs per addBulk call. */
const ENQUEUE_CHUNK = 1000;
const JOB_OPTIONS = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
} as const;
const WORKER_FILE = fileURLToPath(new URL('./bullmq-worker.ts', import.meta.url));

export async function runBullmq(opts: BullmqRunOptions): Promise<SystemRun> {
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
    throw new Error(`concurrency must be a positive integer, got ${opts.concurrency}`);
  }
  if (opts.items.length === 0) throw new Error('items must not be empty');

  const batchId = opts.batchId ?? `bullmq-${randomUUID()}`;
  const queueName = `bench-${batchId}`;
  const redis = new URL(opts.redisUrl);
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const store = new SqliteItemStore(itemStoreFile({ DATA_DIR: opts.dataDir }));
  const queue = new Queue<ItemJob>(queueName, { connection: { host: redis.hostname, port: Number(redis.port) } });
  const children: ChildProcess[] = [];
  try {
    await queue.waitUntilReady();
    for (let w = 0; w < workers; w++) children.push(await spawnWorker(queueName, opts));

    /** The claim check, then one job per item; resolves when the last job is enqueued, with when its items were stored. */
    const submit = async (id: string, items: ItemInputs[]): Promise<number> => {
      await store.createBatch(
        {
          id,
          model: opts.model,
          total: items.length,
          options: BatchOptions.parse({ maxAttempts: JOB_OPTIONS.attempts }),
          createdAt: new Date().toISOString(),
          tenant: 'default',
        },
        items.map((inputs) => ({ inputs })),
      );
      const stored = Date.now();
      for (let from = 0; from < items.length; from += ENQUEUE_CHUNK) {
        const count = Math.min(ENQUEUE_CHUNK, items.length - from);
        await queue.addBulk(
          Array.from({ length: count }, (_, i) => ({
            name: 'infer',
            data: { batchId: id, index: from + i },
            opts: JOB_OPTIONS,
          })),
        );
      }
      return stored;
    };
    const stallTimeoutMs = opts.stallTimeoutMs ?? 60_000;
    if (opts.warmUp && opts.warmUp.length > 0) {
      const warmUpId = `${batchId}-warm-up`;
      await submit(warmUpId, opts.warmUp);
      await waitForOutcomes(store, warmUpId, opts.warmUp.length, children, stallTimeoutMs, 'BullMQ');
      await store.deleteBatch(warmUpId);
    }

    const t0 = Date.now();
    const total = opts.items.length;
    const stored = await submit(batchId, opts.items);
    const submitted = Date.now();

    await waitForOutcomes(store, batchId, total, children, stallTimeoutMs, 'BullMQ');
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
      system: 'bullmq',
      items: total,
      submitMs: submitted - t0,
      wallMs: last - t0,
      firstResultMs: first - t0,
      latencyMs,
      workerPeakRssMb,
      failed,
      detail: { storeWriteMs: stored - t0, enqueueMs: submitted - stored },
    };
  } finally {
    await Promise.all(children.map(stopWorker));
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    if (!opts.keepBatch) await store.deleteBatch(batchId);
    await store.close();
  }
}

/** Forks a worker process and resolves once it is connected to Redis. */
function spawnWorker(queueName: string, opts: BullmqRunOptions): Promise<ChildProcess> {
  const child = fork(
    WORKER_FILE,
    ['--queue', queueName, '--redis', opts.redisUrl, '--concurrency', String(opts.concurrency)],
    {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        DATA_DIR: opts.dataDir,
        MODEL_REPOSITORY: opts.modelRepository,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  return untilReady(child, 'BullMQ');
}

/** The by-hand check: 2,000 digits items (the held-out rows cycled) through a fresh Redis and one worker. */
async function smoke(): Promise<void> {
  const rows = fs
    .readFileSync(path.join(REPO_ROOT, 'models', 'digits', 'testdata', 'heldout.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { inputs: ItemInputs; expected: { labelName: string } });
  const items = Array.from({ length: 2000 }, (_, i) => rows[i % rows.length]!.inputs);
  const batchId = `bullmq-smoke-${randomUUID()}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-bullmq-'));
  const t = Date.now();
  const redis = await startRedis();
  console.error(`redis ${redis.url} (pid ${redis.pid}) up in ${Date.now() - t} ms`);
  try {
    const run = await runBullmq({
      model: 'digits',
      items,
      workers: 1,
      concurrency: 64,
      redisUrl: redis.url,
      dataDir,
      modelRepository: path.join(REPO_ROOT, 'models'),
      batchId,
      keepBatch: true,
    });
    console.log(formatRun(run));
    // The results are batchline's: every item stored once, with the label the committed model gives it.
    const store = new SqliteItemStore(itemStoreFile({ DATA_DIR: dataDir }));
    let wrong = 0;
    let stored = 0;
    for (let cursor: number | undefined = 0; cursor !== undefined;) {
      const page = await store.listResults(batchId, { cursor, limit: 10_000 });
      stored += page.results.length;
      wrong += page.results.filter((r) => r.result?.label !== rows[r.index % rows.length]!.expected.labelName).length;
      cursor = page.nextCursor;
    }
    await store.close();
    console.log(`stored ${stored} results, ${wrong} with a label other than the expected one`);
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
    await redis.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const USAGE = 'usage: node --import tsx bench/systems/bullmq.ts --smoke   (2,000 digits items: a by-hand check)';
  const { values } = parseBenchArgs(USAGE, { options: { smoke: { type: 'boolean', default: false } } });
  if (!values.smoke) {
    console.error(USAGE);
    process.exit(2);
  }
  await smoke();
}
