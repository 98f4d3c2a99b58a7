import type { BatchEnd, BatchOptions, ItemInputs, ItemResult, ItemStatus } from '../contracts/batch.js';
import type { FailedDelivery, StoredWebhook } from '../contracts/webhook.js';
import { InvalidRequestError } from '../errors.js';

/** A batch as stored at submission: everything the workflow does not need to carry (claim check). */
export interface StoredBatch {
  id: string;
  model: string;
  version?: number;
  total: number;
  options: BatchOptions;
  metadata?: Record<string, string>;
  createdAt: string;
  /** The tenant of the API key that submitted it: other tenants never see it. */
  tenant: string;
  /** Where item and batch events are delivered, with the signing secret (kept out of workflow history). */
  webhook?: StoredWebhook;
}

export interface StoredItem {
  index: number;
  id: string;
  inputs: ItemInputs;
}

/** An item as submitted: its client id, if the client gave one (the item's index is its id otherwise), and inputs. */
export interface NewItem {
  id?: string;
  inputs: ItemInputs;
}

/** An item as stored: its given id ('' when the client gave none) and its inputs as JSON text. */
export type ItemRow = [id: string, inputs: string];

/** A submitted item in its stored form: the one place items are serialised for either backend. */
export function itemRow(item: NewItem): ItemRow {
  return [item.id ?? '', JSON.stringify(item.inputs)];
}

/** A finished item (or one whose last attempt failed), as the activity that ran it recorded it. */
export interface StoredResult {
  index: number;
  id: string;
  status: Extract<ItemStatus, 'succeeded' | 'failed'>;
  attempts: number;
  result?: ItemResult;
  error?: { type: string; message: string };
  startedAt: string;
  finishedAt: string;
}

/** One entry of a batch's event log: an item outcome, in the order outcomes were recorded. */
export interface StoredItemEvent {
  kind: 'item';
  /** Increasing within the batch: the SSE event id and the resume point. */
  seq: number;
  index: number;
  id: string;
  status: StoredResult['status'];
  attempts: number;
  result?: ItemResult;
  error?: { type: string; message: string };
  finishedAt: string;
}

/** The last entry of a batch's event log: how the batch ended, written by its workflow's last step. */
export interface StoredEndEvent extends BatchEnd {
  kind: 'end';
  seq: number;
  finishedAt: string;
}

export type StoredEvent = StoredItemEvent | StoredEndEvent;

/**
 * Both stores keep each batch's outcomes counted in blocks of this many items as they are written (migration 6,
 * which spells the number out: it never changes), so counts in blocks of a multiple of it read 1/64 of the rows.
 */
export const COUNTED_BLOCK = 64;

/** Recorded outcomes of one block of items. */
export interface BlockCounts {
  block: number;
  succeeded: number;
  failed: number;
}

export interface ResultPage {
  results: StoredResult[];
  nextCursor?: number;
}

/** What deleteExpired removed. */
export interface Expired {
  /** Ended batches (items, results, events, failed deliveries) older than the retention. */
  batches: number;
  /** Staged NDJSON uploads whose batch was never committed. */
  uploads: number;
}

/**
 * Items and results live outside Temporal: the API writes a batch's items here at submission, workflow inputs
 * carry only ids and counts, and each item activity reads its inputs and writes its result here. Writes of
 * results are idempotent by (batch, item): a success is recorded once and never replaced, so a retried or
 * duplicated activity never creates a second result. The event log holds every recorded outcome and, last, the
 * batch's end: SSE, results?follow and webhooks read only this log. Two backends behave the same: SQLite (one
 * machine, the default) and PostgreSQL (DATABASE_URL, any number of hosts). Every method is asynchronous; when the
 * storage cannot serve (a full disk, an I/O error, a lock held past the busy timeout, a server that cannot be
 * reached), either backend rejects with StoreUnavailableError (store-unavailable.ts).
 */
export interface ItemStore {
  /** Which backend this is (logs, health, tests). */
  readonly backend: 'sqlite' | 'postgres';
  /**
   * Items per appendRows call that this store writes best (an NDJSON upload hands them over this many at a time):
   * SQLite, short transactions that leave the file to other writers often; PostgreSQL, fewer round trips.
   */
  readonly appendSize: number;
  /** Stores a batch and its items atomically. Throws if the id exists. */
  createBatch(batch: StoredBatch, items: Iterable<NewItem>): Promise<void>;
  /**
   * Stages items of a batch that is not committed yet (items `from`, `from + 1`, ...), in their stored form
   * (itemRow, serialised wherever they were parsed): invisible until commitBatch. Rejects with DuplicateItemIdError
   * naming the first item id already present. Appends made one after another (without awaiting) are stored in that
   * order; the caller may parse its next items meanwhile. `perBlock` (itemsPerBlock of the batch's options, default
   * 1): how many consecutive items the store may keep together (both backends keep items in blocks of up to
   * MAX_ITEMS_PER_BLOCK).
   */
  appendRows(batchId: string, from: number, rows: ItemRow[], perBlock?: number): Promise<void>;
  /** Makes a batch whose items were appended visible; rejects unless exactly `batch.total` items are stored. */
  commitBatch(batch: StoredBatch): Promise<void>;
  getBatch(batchId: string): Promise<StoredBatch | undefined>;
  /** Removes a batch, its items, results and events (a submission whose workflow could not start). */
  deleteBatch(batchId: string): Promise<void>;
  /** Items [from, from + count) of a batch, in index order. */
  getItems(batchId: string, from: number, count: number): Promise<StoredItem[]>;
  /**
   * Records an item's outcome and appends it to the batch's event log. Resolves false when a success was already
   * recorded (the write and the event are ignored).
   */
  putResult(batchId: string, result: Omit<StoredResult, 'id'>): Promise<boolean>;
  /**
   * putResult for many outcomes of a batch at once (a run of a chunk): one transaction on SQLite; on PostgreSQL,
   * statements of up to a thousand outcomes, with the batch's other outcomes waiting then. At most one outcome per
   * item; their events go in index order. Resolves, per result in the order given, whether it was written.
   */
  putResults(batchId: string, results: Omit<StoredResult, 'id'>[]): Promise<boolean[]>;
  /**
   * Appends the batch's end to its event log, once: resolves false when an end was already recorded (the first
   * one stays). Every outcome recorded before it precedes it in the log.
   */
  endBatch(batchId: string, end: BatchEnd): Promise<boolean>;
  /** The batch's recorded end, or undefined while it runs (or if it ended without recording one). */
  getEnd(batchId: string): Promise<BatchEnd | undefined>;
  /** Recorded outcomes in index order from `cursor` (and before `end`, if given), optionally only one status. */
  listResults(
    batchId: string,
    options?: { cursor?: number; end?: number; limit?: number; status?: StoredResult['status'] },
  ): Promise<ResultPage>;
  getResult(batchId: string, index: number): Promise<StoredResult | undefined>;
  /** The index of the item with this id (a client id, or the index of an item the client gave no id). */
  findItemIndex(batchId: string, itemId: string): Promise<number | undefined>;
  /**
   * The batch's event log after `afterSeq` (0: from the start), oldest first. A reader never sees an entry
   * appear later before one it has already read: a tail that resumes after its last seq misses nothing.
   */
  listEvents(batchId: string, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /**
   * Resolves soon after the next outcome or batch end recorded by any process on any host (so a tail of the event
   * log wakes at once), or after `timeoutMs` at the latest, or when `signal` aborts.
   */
  nextWrite(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Records a webhook delivery that will not be retried again (idempotent by message id). */
  putFailedDelivery(batchId: string, failure: FailedDelivery): Promise<void>;
  listFailedDeliveries(batchId: string): Promise<FailedDelivery[]>;
  /** Recorded outcomes by status. */
  countResults(batchId: string): Promise<Record<StoredResult['status'], number>>;
  /**
   * Recorded outcomes by status in each block of `blockSize` consecutive items (block b holds items
   * [b * blockSize, (b + 1) * blockSize)), for blocks that have any, in block order: an item map of any size in
   * one grouped read. A multiple of COUNTED_BLOCK reads the kept counts (one row per COUNTED_BLOCK items); any
   * other size counts the results themselves.
   */
  countResultsByBlock(batchId: string, blockSize: number): Promise<BlockCounts[]>;
  /**
   * Removes batches that ended more than `retentionMs` before `now` (everything stored for them) and staged
   * uploads older than `stagedMs` whose batch was never committed.
   */
  deleteExpired(options: { now: Date; retentionMs: number; stagedMs: number }): Promise<Expired>;
  /**
   * Readiness: commits one tiny write (the one row of `store_probe`, overwritten), so it fails as any write would
   * when the storage cannot take one. Calls made while a probe is in flight share it. It never blocks the caller's
   * thread, but it may take as long as a write waits; the caller bounds the wait.
   */
  probe(): Promise<void>;
  close(): Promise<void>;
}

/** An item id that is an index in its canonical spelling: the id of the item there, if the client gave it none. */
export const DEFAULT_ITEM_ID = /^(0|[1-9][0-9]{0,14})$/;

/**
 * Most items one row of a store's item_blocks holds (SQLite since migration 7, PostgreSQL since 8): a block is written
 * as one row and a chunk reads a few, where a row per item cost an upload most of its time in the database's B-tree.
 * A block holds consecutive items' inputs as JSON text, one item per line; an item whose text holds a newline is a
 * block of its own.
 */
export const MAX_ITEMS_PER_BLOCK = 500;

/** A block of consecutive items as a store writes it: the offset of its first row, its row count, their inputs. */
export interface ItemBlock {
  at: number;
  n: number;
  inputs: string;
}

/**
 * Consecutive rows as the blocks a store keeps: up to `perBlock` rows each (MAX_ITEMS_PER_BLOCK at most), their
 * inputs one per line; a row whose text holds a newline is a block of its own.
 */
export function* itemBlocks(rows: readonly ItemRow[], perBlock: number): Generator<ItemBlock> {
  const most = Math.max(1, Math.min(MAX_ITEMS_PER_BLOCK, Math.floor(perBlock)));
  for (let start = 0; start < rows.length;) {
    let end = start + 1;
    if (!rows[start]![1].includes('\n')) {
      const limit = Math.min(rows.length, start + most);
      while (end < limit && !rows[end]![1].includes('\n')) end++;
    }
    const inputs =
      end - start === 1
        ? rows[start]![1]
        : rows
            .slice(start, end)
            .map((r) => r[1])
            .join('\n');
    yield { at: start, n: end - start, inputs };
    start = end;
  }
}

/**
 * How many consecutive items of a batch with these options a store may keep together (appendRows): the items one
 * activity reads at once. A batch run item by item keeps each item alone, so reading one item reads no other.
 */
export function itemsPerBlock(options: Pick<BatchOptions, 'itemsPerActivity'>): number {
  return options.itemsPerActivity ?? 1;
}

/** Thrown when a batch names the same item id twice. */
export class DuplicateItemIdError extends InvalidRequestError {
  constructor(
    readonly itemId: string,
    readonly index: number,
  ) {
    super(`duplicate item id '${itemId}' (item ${index})`, [
      { path: ['items', index, 'id'], message: 'duplicate item id' },
    ]);
  }
}
