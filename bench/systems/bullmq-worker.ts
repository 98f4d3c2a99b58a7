// The worker process of the BullMQ peer (spawned by bench/systems/bullmq.ts, never run by hand): one BullMQ Worker
// on the local Redis whose processor does what batchline's inferItem activity does, through the same code: the
// item read from the item store (claim check), the model run by InferenceRuntime built from config exactly as
// src/worker.ts builds it, the outcome recorded with putResult. Permanent runtime faults are not retried
// (UnrecoverableError); a failure is recorded when it ends the item's attempts.
//
//   node --import tsx bench/systems/bullmq-worker.ts --queue NAME --redis URL --concurrency N
//   (DATA_DIR and MODEL_REPOSITORY from the environment, read by loadConfig like every batchline setting)
// Tells its parent `{ type: 'ready' }` over IPC once connected; stops on `{ type: 'stop' }` or SIGTERM.
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { toActivityFailure } from '../../activities/permanent-failure.js';
import type { ItemResult } from '../../src/contracts/batch.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { InferenceRuntime, runtimeOptions } from '../../src/runtime/inference.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import type { StoredBatch } from '../../src/stores/item-store.js';
import { itemStoreFile, SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { intArg, parseBenchArgs } from '../lib/args.js';

/** A job names one item of a batch in the item store, nothing more. */
export interface ItemJob {
  batchId: string;
  index: number;
}

const USAGE = 'usage: node --import tsx bench/systems/bullmq-worker.ts --queue NAME --redis URL [--concurrency N]';
const { values } = parseBenchArgs(USAGE, {
  options: {
    queue: { type: 'string' },
    redis: { type: 'string' },
    concurrency: { type: 'string', default: '64' },
  },
});
const concurrency = intArg(USAGE, 'concurrency', values.concurrency);
if (!values.queue || !values.redis) {
  console.error(`--queue and --redis are required\n${USAGE}`);
  process.exit(2);
}

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL, 'bullmq-worker');
const store = new SqliteItemStore(itemStoreFile(config));
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

async function processItem(job: Job<ItemJob>): Promise<void> {
  const { batchId, index } = job.data;
  const attempt = job.attemptsMade + 1;
  const maxAttempts = job.opts.attempts ?? 1;
  // When BullMQ moved the job to active: the start of this attempt.
  const startedAt = new Date(job.processedOn ?? Date.now()).toISOString();
  let batch = batches.get(batchId);
  if (!batch) {
    batch = await store.getBatch(batchId);
    if (batch) batches.set(batchId, batch);
  }
  const [item] = await store.getItems(batchId, index, 1);
  if (!batch || !item) throw new UnrecoverableError(`item ${index} of batch ${batchId} is not in the item store`);
  try {
    const result = await runtime.infer(batch.model, batch.version, item.inputs);
    await record(job.data, attempt, startedAt, { result });
  } catch (err) {
    const failure = toActivityFailure(err);
    if (failure.nonRetryable || attempt >= maxAttempts) {
      await record(job.data, attempt, startedAt, {
        error: { type: failure.type ?? 'Error', message: failure.message },
      });
    }
    throw failure.nonRetryable ? new UnrecoverableError(failure.message) : err;
  }
}

const url = new URL(values.redis);
const worker = new Worker<ItemJob>(values.queue, processItem, {
  connection: { host: url.hostname, port: Number(url.port) },
  concurrency,
});
worker.on('error', (err) => log.error({ err }, 'bullmq worker error'));
worker.on('failed', (job, err) =>
  log.warn({ batchId: job?.data.batchId, index: job?.data.index, err: err.message }, 'job attempt failed'),
);

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= (async () => {
    await worker.close();
    await runtime.close();
    await store.close();
  })().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'bullmq worker did not stop cleanly');
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

await worker.waitUntilReady();
log.info({ queue: values.queue, concurrency, threads: config.INFERENCE_THREADS }, 'bullmq worker ready');
process.send?.({ type: 'ready' });
