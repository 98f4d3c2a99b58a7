import { itemOutcome, type BatchStatus, type BatchSummary, type ItemOutcome } from '../contracts/batch.js';
import { endEventType, itemEventType, type EventType } from '../contracts/event-type.js';
import type { StoredItemEvent } from '../stores/item-store.js';

/** The body of a delivery, in the shape Standard Webhooks recommends: `{ type, timestamp, data }`. */
export interface WebhookMessage<D = unknown> {
  type: EventType;
  /** When the event happened (ISO 8601): an item's finishedAt, the batch's last update. */
  timestamp: string;
  data: D;
}

/** What an item event carries: the stored outcome, with its result or error, and its batch. */
export type ItemEventData = { batchId: string } & ItemOutcome;

/**
 * The message id (`webhook-id`) of an item event (`seq`: its place in the batch's event log) or of the batch's end.
 * Derived from the store, never from a workflow run, so it stays the same across retries and continue-as-new and
 * receivers can deduplicate by it.
 */
export function webhookMessageId(batchId: string, seq: number | 'end'): string {
  return `msg_${batchId}_${seq}`;
}

export function itemMessage(batchId: string, event: StoredItemEvent): WebhookMessage<ItemEventData> {
  return {
    type: itemEventType(event.status),
    timestamp: event.finishedAt,
    data: { batchId, ...itemOutcome(event) },
  };
}

/** The batch's end: its summary (counts, status, timings), the same document `GET /v1/batches/:id` starts with. */
export function endMessage(
  status: Exclude<BatchStatus, 'running'>,
  summary: BatchSummary,
): WebhookMessage<BatchSummary> {
  const { failures: _failures, ...data } = summary;
  return { type: endEventType(status), timestamp: summary.updatedAt, data };
}
