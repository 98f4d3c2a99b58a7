// A shard: one range of a large batch's items, run by the item window in a child workflow of the batch
// (`batch-<id>/shard-<n>`), so no single workflow's history holds every item.
import { continueAsNew, getExternalWorkflowHandle, log, patched } from '@temporalio/workflow';
import type { BatchSummary, ShardWorkflowInput } from '../src/contracts/batch.js';
import { runItemWindow, type ItemWindow } from './item-window.js';
import { finishHandlers, shardProgressSignal, toSummary } from './messages.js';

/** A shard tells its parent its counts at most this often while it runs (its result carries the final ones). */
const PROGRESS_INTERVAL_MS = 2000;

/**
 * A run waits for its progress signals to be delivered before it continues as new or ends: the event that says a
 * signal was delivered, arriving while the task that ends the run was open, made Temporal refuse that completion
 * (UnhandledCommand) and the worker replay the run. Runs recorded before it end without waiting, on replay too.
 */
const REPORTS_DELIVERED_PATCH = 'reports-delivered-before-end';

/**
 * Runs items [range.start, range.end) of a batch, reports live counts to the parent batch by signal, re-runs its
 * dead letters when the parent forwards retryFailed, continues as new before its history grows long, and returns
 * its counts and failures for the parent to aggregate.
 */
export async function shardWorkflow(input: ShardWorkflowInput): Promise<BatchSummary> {
  let reportedAt = 0;
  /** Progress signals sent and not yet delivered. */
  const sending = new Set<Promise<void>>();
  const report = (window: ItemWindow, counted: boolean) => {
    if (!counted && Date.now() - reportedAt < PROGRESS_INTERVAL_MS) return;
    reportedAt = Date.now();
    const counts = { ...window.table.counts };
    const sent = getExternalWorkflowHandle(input.parentWorkflowId)
      .signal(shardProgressSignal, { start: input.range.start, counts })
      .catch(() => undefined) // a parent that has moved on does not fail its shard
      .finally(() => sending.delete(sent));
    sending.add(sent);
  };
  const reportsDelivered = async () => {
    if (patched(REPORTS_DELIVERED_PATCH)) await Promise.all(sending);
  };
  const { end, window, carried } = await runItemWindow({ ...input, report, reportsDelivered });
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
