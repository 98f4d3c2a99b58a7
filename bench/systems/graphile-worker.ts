// The worker process of the graphile-worker peer (spawned by bench/systems/graphile.ts, never run by hand): one
// graphile-worker runner on the PostgreSQL database that also holds the item store, whose one task does what the
// BullMQ peer's processor does (bench/systems/bullmq-worker.ts), through the same code: the item read from the item
// store (claim check), the model run by InferenceRuntime built from config exactly as src/worker.ts builds it, the
// outcome recorded with putResult. graphile-worker's defaults otherwise: one job fetched per free slot, new jobs
// announced by LISTEN/NOTIFY, each completion its own statement.
//
//   node --import tsx bench/systems/graphile-worker.ts --task NAME [--concurrency N] [--pool-size N]
//   (DATABASE_URL and MODEL_REPOSITORY from the environment, read by loadConfig like every batchline setting)
// Tells its parent `{ type: 'ready' }` over IPC once listening; stops on `{ type: 'stop' }`, SIGTERM or disconnect.
import { EventEmitter } from 'node:events';
import { Logger, run, type JobHelpers, type LogLevel, type WorkerEvents } from 'graphile-worker';
import { toActivityFailure } from '../../activities/permanent-failure.js';
import type { ItemResult } from '../../src/contracts/batch.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { InferenceRuntime, runtimeOptions } from '../../src/runtime/inference.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import type { StoredBatch } from '../../src/stores/item-store.js';
import { openItemStore } from '../../src/stores/open-stores.js';
import { intArg, parseBenchArgs } from '../lib/args.js';

/** A job names one item of a batch in the item store, nothing more. */
export interface ItemJob {
  batchId: string;
  index: number;
}

/**
 * How often an idle worker looks for jobs that no NOTIFY announces: retries, whose run_at lies in the future
 * (graphile-worker's default is 2 s; a retried item would wait that long on top of its backoff).
 */
const POLL_INTERVAL_MS = 100;

const USAGE = 'usage: node --import tsx bench/systems/graphile-worker.ts --task NAME [--concurrency N] [--pool-size N]';
const { values } = parseBenchArgs(USAGE, {
  options: {
    task: { type: 'string' },
    concurrency: { type: 'string', default: '64' },
    // graphile-worker's advice: 10 or concurrency + 2, whichever is larger. The parent passes less when the
    // server's max_connections cannot give every worker process that many.
    'pool-size': { type: 'string' },
  },
});
const concurrency = intArg(USAGE, 'concurrency', values.concurrency);
const poolSize = intArg(USAGE, 'pool-size', values['pool-size'] ?? String(Math.max(10, concurrency + 2)), 2);
if (!values.task) {
  console.error(`--task is required\n${USAGE}`);
  process.exit(2);
}
const task = values.task;

const config = loadConfig();
if (!config.DATABASE_URL) {
  console.error('DATABASE_URL is required: the graphile-worker peer keeps its jobs and its item store in PostgreSQL');
  process.exit(2);
}
const log = createLogger(config.LOG_LEVEL, 'graphile-worker');
const store = await openItemStore(config);
const runtime = new InferenceRuntime(new ModelRepository(config.MODEL_REPOSITORY), runtimeOptions(config));
const batches = new Map<string, StoredBatch>();

/** Records an item's outcome as the batchline activity does (idempotent: a success is never replaced). */
async function record(
  job: ItemJob,
  attempts: number,
  startedAt: string,
  outcome: { result: ItemResult } | { error: { type: string; message: string } },
): Promise<void> {
  const finishedAt = new Date().toISOString();
  await store.putResult(
    job.batchId,
    'result' in outcome
      ? { index: job.index, status: 'succeeded', attempts, result: outcome.result, startedAt, finishedAt }
      : { index: job.index, status: 'failed', attempts, error: outcome.error, startedAt, finishedAt },
  );
}

async function processItem(payload: unknown, helpers: JobHelpers): Promise<void> {
  const { batchId, index } = payload as ItemJob;
  // graphile-worker counts the attempt when it locks the job, so `attempts` already includes this one.
  const attempt = helpers.job.attempts;
  const maxAttempts = helpers.job.max_attempts;
  // When the job was locked for this attempt (BullMQ's processedOn: moved to active).
  const startedAt = (helpers.job.locked_at ?? new Date()).toISOString();
  let batch = batches.get(batchId);
  if (!batch) {
    batch = await store.getBatch(batchId);
    if (batch) batches.set(batchId, batch);
  }
  const [item] = await store.getItems(batchId, index, 1);
  if (!batch || !item) {
    // graphile-worker has no "do not retry" error: the job ends here, without an outcome (as BullMQ's
    // UnrecoverableError ends it), and the parent's stall timeout reports the missing item.
    log.error({ batchId, index }, 'item not in the item store; job dropped');
    return;
  }
  try {
    const result = await runtime.infer(batch.model, batch.version, item.inputs);
    await record({ batchId, index }, attempt, startedAt, { result });
  } catch (err) {
    const failure = toActivityFailure(err);
    if (failure.nonRetryable || attempt >= maxAttempts) {
      await record({ batchId, index }, attempt, startedAt, {
        error: { type: failure.type ?? 'Error', message: failure.message },
      });
    }
    // A permanent fault completes the job (its failure is recorded): throwing would schedule a retry.
    if (!failure.nonRetryable) throw err;
  }
}

/** graphile-worker's log lines go to pino, at the matching level. */
const PINO_LEVEL = { error: 'error', warning: 'warn', info: 'info', debug: 'debug' } as const;
const logger = new Logger((scope) => (level: LogLevel, message: string, meta?: unknown) => {
  log[PINO_LEVEL[level]]({ ...scope, ...(meta as object | undefined) }, message);
});

const events: WorkerEvents = new EventEmitter();
const listening = new Promise<void>((resolve) => events.once('pool:listen:success', () => resolve()));

const runner = await run({
  connectionString: config.DATABASE_URL,
  maxPoolSize: poolSize,
  concurrency,
  pollInterval: POLL_INTERVAL_MS,
  noHandleSignals: true, // this process stops on its own signals and on its parent's word, below
  taskList: { [task]: processItem },
  parsedCronItems: [], // no recurring jobs: do not look for a crontab file
  // graphile-worker's own batching, as its documentation advises for throughput: fetch jobs for the whole
  // concurrency in one query (local queue) and mark finished jobs done in batches. Without them it makes two
  // commits per job and is far slower (BENCHMARKS.md, cluster).
  preset: { worker: { localQueue: { size: concurrency + 1 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  logger,
  events,
});

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= (async () => {
    await runner.stop(); // graceful: running jobs finish, locks are released
    await runtime.close();
    await store.close();
  })().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'graphile worker did not stop cleanly');
      process.exit(1);
    },
  );
  return stopping;
}
process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'stop') void stop();
});
process.once('SIGTERM', () => void stop());
process.once('disconnect', () => void stop()); // the parent died: do not linger
runner.promise.catch((err: unknown) => {
  log.error({ err }, 'graphile runner failed');
  process.exit(1);
});

await listening;
log.info({ task, concurrency, poolSize, threads: config.INFERENCE_THREADS }, 'graphile worker ready');
process.send?.({ type: 'ready' });
