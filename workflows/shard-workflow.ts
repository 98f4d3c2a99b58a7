// A shard: one range of a large batch's items, run by the item window in a child workflow of the batch
// (`batch-<id>/shard-<n>`), so no single workflow's history holds every item.
import { continueAsNew, getExternalWorkflowHandle, log } from '@temporalio/workflow';
import type { BatchSummary, ShardWorkflowInput } from '../src/contracts/batch.js';
import { runItemWindow, type ItemWindow } from './item-window.js';
import { finishHandlers, shardProgressSignal, toSummary } from './messages.js';

/** A shard tells its parent its counts at most this often while it runs (its result carries the final ones). */
const PROGRESS_INTERVAL_MS = 2000;

/**
 * Runs items [range.start, range.end) of a batch, reports live counts to the parent batch by signal, re-runs its
 * dead letters when the parent forwards retryFailed, continues as new before its history grows long, and returns
 * its counts and failures for the parent to aggregate.
 */
export async function shardWorkflow(input: ShardWorkflowInput): Promise<BatchSummary> {
  let reportedAt = 0;
  const report = (window: ItemWindow) => {
    if (Date.now() - reportedAt < PROGRESS_INTERVAL_MS) return;
    reportedAt = Date.now();
    const counts = { ...window.table.counts };
    void getExternalWorkflowHandle(input.parentWorkflowId)
      .signal(shardProgressSignal, { start: input.range.start, counts })
      .catch(() => undefined); // a parent that has moved on does not fail its shard
  };
  const { end, window, carried } = await runItemWindow({ ...input, report });
  if (end === 'continue-as-new') {
    log.info('shard continues as new', { batchId: input.batchId, range: input.range });
    return continueAsNew<typeof shardWorkflow>({ ...input, carried });
  }
  await finishHandlers('shard');
  const p = window.progress();
  log.info('shard ended', { batchId: input.batchId, range: input.range, counts: p.counts });
  return { ...toSummary(p, input.version), failures: window.table.failures() };
}

/** The workflow id of shard k of a batch: the batch's own id with a suffix, so one listing finds them all. */
export const shardWorkflowId = (batchWorkflowId: string, k: number): string => `${batchWorkflowId}/shard-${k}`;
