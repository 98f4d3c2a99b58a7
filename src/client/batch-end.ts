// How a batch ended, for readers of the item store's event log whose batch closed without recording its end.
import { WorkflowFailedError, type Client } from '@temporalio/client';
import type { BatchEnd, BatchSummary } from '../contracts/batch.js';
import type { ItemStore } from '../stores/item-store.js';
import type { batchWorkflow } from '../../workflows/batch-workflow.js';
import { progressQuery } from '../../workflows/messages.js';
import { mapTemporalError } from './temporal-errors.js';

/** Workflow id of a batch: readable in the Temporal UI and CLI. */
export const batchWorkflowId = (batchId: string): string => `batch-${batchId}`;

const CLOSED_STATUS = { CANCELLED: 'canceled', FAILED: 'failed', TERMINATED: 'failed', TIMED_OUT: 'failed' } as const;

/**
 * How a batch's workflow ended according to Temporal, or undefined while it runs. A completed workflow's result is
 * its summary; a canceled, terminated or timed-out one is summarised from its progress query (Temporal answers
 * queries of closed workflows by replaying them).
 */
export async function temporalOutcome(client: Client, batchId: string): Promise<BatchEnd | undefined> {
  const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(batchId));
  try {
    const execution = (await handle.describe()).status.name;
    if (execution === 'RUNNING' || execution === 'CONTINUED_AS_NEW') return undefined;
    const summary = await summaryOf(client, batchId, execution);
    return { status: summary.status === 'running' ? 'failed' : summary.status, summary };
  } catch (err) {
    if (err instanceof WorkflowFailedError) throw err;
    return mapTemporalError(err, `batch '${batchId}'`);
  }
}

/** The summary for a workflow in the given execution status: its result once completed, else its progress query. */
export async function summaryOf(client: Client, batchId: string, execution: string): Promise<BatchSummary> {
  const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(batchId));
  if (execution === 'COMPLETED') {
    const { failures: _failures, ...result } = await handle.result();
    return result;
  }
  const { batchId: _batchId, percent: _percent, ...progress } = await handle.query(progressQuery);
  return {
    id: batchId,
    ...progress,
    status: CLOSED_STATUS[execution as keyof typeof CLOSED_STATUS] ?? progress.status,
  };
}

/**
 * The batch's end as the item store records it. A batch workflow records its end as its last step; one that was
 * terminated, timed out, or ended before this step existed did not: when Temporal says it has closed, its end is
 * recorded now (idempotent: the first recorded end stays), so every reader of the log sees it.
 */
export async function recordMissingEnd(
  client: Client,
  store: ItemStore,
  batchId: string,
): Promise<BatchEnd | undefined> {
  const recorded = await store.getEnd(batchId);
  if (recorded) return recorded;
  const end = await temporalOutcome(client, batchId);
  if (!end) return undefined;
  const batch = await store.getBatch(batchId);
  const { failures: _failures, ...summary } = end.summary;
  const final: BatchEnd = {
    status: end.status,
    summary: { ...summary, ...(batch?.version !== undefined ? { version: batch.version } : {}) },
  };
  // Another reader may have recorded it first: the first recorded end is the one every reader sees.
  return (await store.endBatch(batchId, final)) ? final : ((await store.getEnd(batchId)) ?? final);
}
