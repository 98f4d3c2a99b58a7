// The item store's rows as both backends read them (the same columns, JSON in TEXT), and their mapping to the
// ItemStore's types: one place, so SQLite and PostgreSQL answer with identical values.
import type { BatchEnd, ItemInputs } from '../contracts/batch.js';
import type { FailedDelivery } from '../contracts/webhook.js';
import type { BlockCounts, StoredBatch, StoredEvent, StoredItem, StoredResult } from './item-store.js';

/** A row of item_blocks: items [first, first + n), their inputs one per line (see itemBlocks). */
export interface BlockRow {
  first: number;
  n: number;
  inputs: string;
}

export interface BatchRow {
  id: string;
  model: string;
  version: number | null;
  total: number;
  options: string;
  metadata: string | null;
  created_at: string;
  tenant: string;
  webhook: string | null;
}

export interface ResultRow {
  idx: number;
  client_id: string;
  status: StoredResult['status'];
  attempts: number;
  result: string | null;
  error: string | null;
  started_at: string;
  finished_at: string;
}

/** An event joined with its item's client id and, for a success, its result. */
export interface EventRow {
  /** PostgreSQL's BIGINT comes back as a string. */
  seq: number | string;
  kind: StoredEvent['kind'];
  idx: number;
  /** An item's outcome, or the batch's status for its end. */
  status: string;
  attempts: number;
  error: string | null;
  summary: string | null;
  finished_at: string;
  client_id: string | null;
  result: string | null;
}

export interface FailureRow {
  message_id: string;
  event_type: string;
  attempts: number;
  last_error: string;
  failed_at: string;
}

/** An item's id: the client's, or its index when the client gave none (stored as ''). */
export function itemId(row: { idx: number; client_id: string }): string {
  return row.client_id === '' ? String(row.idx) : row.client_id;
}

/**
 * Items [from, to) of a batch from the blocks that hold them (in order; the first may start before `from`) and the
 * ids their clients gave (item_ids rows in that range).
 */
export function toItems(
  batchId: string,
  blocks: BlockRow[],
  ids: { idx: number; client_id: string }[],
  from: number,
  to: number,
): StoredItem[] {
  const given = new Map(ids.map((r) => [r.idx, r.client_id]));
  const items: StoredItem[] = [];
  for (const { first, n, inputs } of blocks) {
    if (first + n <= from) continue;
    const lines = n === 1 ? [inputs] : inputs.split('\n');
    if (lines.length !== n) throw new Error(`item block ${batchId}/${first} holds ${lines.length} items, not ${n}`);
    for (let k = Math.max(0, from - first); k < n && first + k < to; k++) {
      const index = first + k;
      const id = itemId({ idx: index, client_id: given.get(index) ?? '' });
      items.push({ index, id, inputs: JSON.parse(lines[k]!) as ItemInputs });
    }
  }
  return items;
}

/** Optional fields absent (not undefined) when their column is NULL. */
export function toBatch(row: BatchRow): StoredBatch {
  return {
    id: row.id,
    model: row.model,
    ...(row.version !== null ? { version: row.version } : {}),
    total: row.total,
    options: JSON.parse(row.options),
    ...(row.metadata ? { metadata: JSON.parse(row.metadata) } : {}),
    createdAt: row.created_at,
    tenant: row.tenant,
    ...(row.webhook ? { webhook: JSON.parse(row.webhook) } : {}),
  };
}

export function toResult(row: ResultRow): StoredResult {
  return {
    index: row.idx,
    id: itemId(row),
    status: row.status,
    attempts: row.attempts,
    ...(row.result ? { result: JSON.parse(row.result) } : {}),
    ...(row.error ? { error: JSON.parse(row.error) } : {}),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export function toEvent(row: EventRow): StoredEvent {
  const seq = Number(row.seq);
  if (row.kind === 'end') {
    return {
      kind: 'end',
      seq,
      status: row.status as BatchEnd['status'],
      summary: JSON.parse(row.summary!),
      finishedAt: row.finished_at,
    };
  }
  return {
    kind: 'item',
    seq,
    index: row.idx,
    id: itemId({ idx: row.idx, client_id: row.client_id ?? '' }),
    status: row.status as StoredResult['status'],
    attempts: row.attempts,
    ...(row.result ? { result: JSON.parse(row.result) } : {}),
    ...(row.error ? { error: JSON.parse(row.error) } : {}),
    finishedAt: row.finished_at,
  };
}

export function toFailedDelivery(row: FailureRow): FailedDelivery {
  return {
    messageId: row.message_id,
    eventType: row.event_type,
    attempts: row.attempts,
    lastError: row.last_error,
    failedAt: row.failed_at,
  };
}

/** Grouped (block, status, count) rows, in block order, as one BlockCounts per block. */
export function blockCounts(rows: { block: number; status: StoredResult['status']; n: number }[]): BlockCounts[] {
  const blocks: BlockCounts[] = [];
  for (const row of rows) {
    const block = Number(row.block);
    let last = blocks.at(-1);
    if (last?.block !== block) blocks.push((last = { block, succeeded: 0, failed: 0 }));
    last[row.status] = row.n;
  }
  return blocks;
}
