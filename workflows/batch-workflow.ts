// The batch: one workflow per batch (`batch-<id>`). Items and results live in the item store (claim check); the
// workflow carries ids and counts, and its last step records the batch's end in the store's event log.
import {
  CancellationScope,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { BatchStatus, BatchSummary, BatchWorkflowInput, ItemCounts } from '../src/contracts/batch.js';
import { runItemWindow, type ItemWindow } from './item-window.js';
import { finishHandlers, toSummary, type Progress } from './messages.js';
import { BatchFailedCountKey, BatchStatusKey, BatchStatusValue } from './search-attributes.js';
import { runShardedBatch } from './sharded-batch.js';

/** The batch's last step: its end into the item store's event log, retried for as long as the store is away. */
const { recordBatchEnd } = proxyActivities<Activities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

/** BatchFailedCount is upserted at most this often while the batch runs (each upsert is a history event). */
const FAILED_COUNT_INTERVAL_MS = 5000;

/**
 * One batch. Up to options.shardSize items run in this workflow (the item window: at most `concurrency` item
 * activities at a time, each retried with exponential backoff on its own); a larger batch runs its items in
 * shardWorkflow children and aggregates them. Either way the batch answers the same queries (progress, item,
 * items, failures), signals (cancel, pause, resume, setConcurrency) and update (retryFailed), keeps the
 * BatchStatus and BatchFailedCount search attributes current, and continues as new before its history grows long.
 * Cancelling (by signal or by Temporal) stops scheduling, cancels running items, marks the rest canceled and keeps
 * every finished result.
 */
export async function batchWorkflow(input: BatchWorkflowInput): Promise<BatchSummary> {
  const startedAtMs = input.startedAtMs ?? workflowInfo().startTime.getTime();
  const failedCount = failedCountReporter();

  let ended: { status: Extract<BatchStatus, 'completed' | 'canceled'>; progress: Progress; counts: ItemCounts };
  if (input.total > input.options.shardSize) {
    const { end, batch, carried } = await runShardedBatch(input, startedAtMs, (b) =>
      failedCount(b.counts().failed, true),
    );
    if (end === 'continue-as-new') return continueAsNewBatch({ ...input, startedAtMs, carried });
    ended = { status: batch.canceled ? 'canceled' : 'completed', progress: batch.progress(), counts: batch.counts() };
  } else {
    const carried = input.carried?.kind === 'items' ? input.carried : undefined;
    const report = (w: ItemWindow, counted: boolean) => failedCount(w.table.counts.failed, counted);
    const range = { start: 0, end: input.total };
    const { end, window, carried: next } = await runItemWindow({ ...input, range, startedAtMs, carried, report });
    if (end === 'continue-as-new') return continueAsNewBatch({ ...input, startedAtMs, carried: next });
    ended = {
      status: window.canceled ? 'canceled' : 'completed',
      progress: window.progress(),
      counts: window.table.counts,
    };
  }

  log.info('batch ended', { batchId: input.batchId, status: ended.status, counts: ended.counts });
  upsertSearchAttributes([
    { key: BatchStatusKey, value: BatchStatusValue[ended.status] },
    { key: BatchFailedCountKey, value: ended.counts.failed },
  ]);
  const summary = toSummary(ended.progress, input.version);
  // Histories from before this step replay without it (and their batches' ends are recorded by their readers).
  if (patched('record-batch-end')) {
    const { status } = ended;
    // Not cancellable: a batch that Temporal cancelled still records that it ended.
    await CancellationScope.nonCancellable(() => recordBatchEnd({ batchId: input.batchId, status, summary }));
  }
  await finishHandlers('batch');
  return summary;
}

function continueAsNewBatch(next: BatchWorkflowInput): Promise<never> {
  log.info('batch continues as new', { batchId: next.batchId, historyLength: workflowInfo().historyLength });
  return continueAsNew<typeof batchWorkflow>(next);
}

/**
 * Keeps BatchFailedCount current for visibility queries (`temporal workflow list --query 'BatchFailedCount > 0'`):
 * upserted when the count changed, at most every FAILED_COUNT_INTERVAL_MS unless `now` (a shard ended, or a
 * count of finished local items: a time throttle there would not replay).
 */
function failedCountReporter(): (failed: number, now: boolean) => void {
  let reported = 0;
  let reportedAt = 0;
  return (failed, now) => {
    if (failed === reported || (!now && Date.now() - reportedAt < FAILED_COUNT_INTERVAL_MS)) return;
    reported = failed;
    reportedAt = Date.now();
    upsertSearchAttributes([{ key: BatchFailedCountKey, value: failed }]);
  };
}
