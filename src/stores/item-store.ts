import type { BatchOptions, ItemInputs, ItemResult, ItemStatus } from '../contracts/batch.js';
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

/** One entry of a batch's event log: an item outcome in the order outcomes were recorded. */
export interface StoredEvent {
  /** Global, increasing: the SSE event id and the resume point. */
  seq: number;
  index: number;
  id: string;
  status: StoredResult['status'];
  attempts: number;
  result?: ItemResult;
  error?: { type: string; message: string };
  finishedAt: string;
}

export interface ResultPage {
  results: StoredResult[];
  nextCursor?: number;
}

/**
 * Items and results live outside Temporal: the API writes a batch's items here at submission, workflow inputs
 * carry only ids and counts, and each item activity reads its inputs and writes its result here. Writes of
 * results are idempotent by (batch, item): a success is recorded once and never replaced, so a retried or
 * duplicated activity never creates a second result. SQLite by default; PostgreSQL can follow behind this
 * interface.
 */
export interface ItemStore {
  /** Stores a batch and its items atomically. Throws if the id exists. */
  createBatch(batch: StoredBatch, items: Iterable<NewItem>): void;
  /**
   * Streams items of a batch that is not committed yet (items `from`, `from + 1`, ...): invisible until
   * commitBatch. Throws DuplicateItemIdError naming the first item id already present.
   */
  appendItems(batchId: string, from: number, items: NewItem[]): void;
  /**
   * appendItems off the calling thread (SQLite: a worker thread with its own connection), so the caller can parse
   * the next items while these are written. Appends run in the order they were made; rejects as appendItems throws.
   */
  appendItemsInBackground(batchId: string, from: number, items: NewItem[]): Promise<void>;
  /** Makes a batch whose items were appended visible; throws unless exactly `batch.total` items are stored. */
  commitBatch(batch: StoredBatch): void;
  getBatch(batchId: string): StoredBatch | undefined;
  /** Removes a batch, its items and results (a submission whose workflow could not start). */
  deleteBatch(batchId: string): void;
  /** Items [from, from + count) of a batch, in index order. */
  getItems(batchId: string, from: number, count: number): StoredItem[];
  /**
   * Records an item's outcome and appends it to the batch's event log. Returns false when a success was already
   * recorded (the write and the event are ignored).
   */
  putResult(batchId: string, result: Omit<StoredResult, 'id'>): boolean;
  /** Recorded outcomes in index order from `cursor`, optionally only one status. */
  listResults(
    batchId: string,
    options?: { cursor?: number; limit?: number; status?: StoredResult['status'] },
  ): ResultPage;
  getResult(batchId: string, index: number): StoredResult | undefined;
  /** The index of the item with this id (a client id, or the index of an item the client gave no id). */
  findItemIndex(batchId: string, itemId: string): number | undefined;
  /** The batch's event log after `afterSeq` (0: from the start), oldest first. */
  listEvents(batchId: string, afterSeq: number, limit: number): StoredEvent[];
  /**
   * Resolves soon after the next write to the store by any process (so a tail of the event log can wake at once),
   * or after `timeoutMs` at the latest, or when `signal` aborts. A store that cannot watch its writes just waits.
   */
  nextWrite(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Records a webhook delivery that will not be retried again (idempotent by message id). */
  putFailedDelivery(batchId: string, failure: FailedDelivery): void;
  listFailedDeliveries(batchId: string): FailedDelivery[];
  /** Recorded outcomes by status. */
  countResults(batchId: string): Record<StoredResult['status'], number>;
  close(): void;
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
