import { randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { BatchSummary, BatchView, BatchWorkflowInput, CreateBatchRequest, ItemView } from '../contracts/batch.js';
import { NotFoundError } from '../errors.js';
import type { ItemStore, StoredResult } from '../stores/item-store.js';
import { batchWorkflow } from '../../workflows/batch-workflow.js';
import { itemsQuery, progressQuery, type ItemState, type ItemsPage } from '../../workflows/messages.js';
import { BatchItemCountKey, BatchModelKey, BatchStatusKey, BatchStatusValue } from '../../workflows/search-attributes.js';
import { mapTemporalError } from './temporal-errors.js';

export interface BatchClientOptions {
  address: string;
  namespace: string;
  taskQueue: string;
}

/** Workflow id of a batch: readable in the Temporal UI and CLI. */
export const batchWorkflowId = (batchId: string): string => `batch-${batchId}`;

/** A new batch id: 10 random bytes as hex, safe in URLs and workflow ids. */
export function newBatchId(): string {
  return randomBytes(10).toString('hex');
}

/**
 * The Temporal client facade for the API and CLI: starts, reads and steers batch workflows, and maps Temporal's
 * errors to the app's (unknown batch -> NotFoundError, unreachable cluster -> UnavailableError).
 */
export class BatchClient {
  private constructor(
    private readonly connection: Connection,
    private readonly client: Client,
    private readonly taskQueue: string,
    private readonly store: ItemStore,
  ) {}

  /** Connects lazily: the API starts even while Temporal is down and answers 503 until it is back. */
  static create(options: BatchClientOptions, store: ItemStore): BatchClient {
    const connection = Connection.lazy({ address: options.address, connectTimeout: '5s' });
    const client = new Client({ connection, namespace: options.namespace });
    return new BatchClient(connection, client, options.taskQueue, store);
  }

  /**
   * Stores a validated batch's items (claim check), then starts its workflow, which carries only ids and
   * counts; returns the new batch id. If the workflow cannot start, the stored batch is removed again.
   */
  async submit(request: CreateBatchRequest): Promise<string> {
    const batchId = newBatchId();
    const input: BatchWorkflowInput = {
      batchId,
      model: request.model,
      version: request.version,
      total: request.items.length,
      options: request.options,
    };
    this.store.createBatch(
      { ...input, id: batchId, metadata: request.metadata, createdAt: new Date().toISOString() },
      request.items,
    );
    try {
      await this.client.workflow.start(batchWorkflow, {
        workflowId: batchWorkflowId(batchId),
        taskQueue: this.taskQueue,
        args: [input],
        memo: { model: request.model, version: request.version ?? null, items: input.total, metadata: request.metadata ?? {} },
        typedSearchAttributes: [
          { key: BatchModelKey, value: request.model },
          { key: BatchStatusKey, value: BatchStatusValue.running },
          { key: BatchItemCountKey, value: input.total },
        ],
      });
    } catch (err) {
      this.store.deleteBatch(batchId);
      mapTemporalError(err, 'batch');
    }
    return batchId;
  }

  /**
   * The batch's state: counts and each item's state from the workflow (its result once completed, queries
   * otherwise), each item's client id and result from the item store.
   */
  async get(batchId: string, page: { cursor?: number; limit?: number } = {}): Promise<BatchView> {
    const batch = this.store.getBatch(batchId);
    if (!batch) throw new NotFoundError(`batch '${batchId}' not found`);
    const handle = this.client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(batchId));
    let summary: BatchSummary;
    let states: ItemsPage;
    try {
      const description = await handle.describe();
      if (description.status.name === 'COMPLETED') {
        summary = await handle.result();
      } else {
        const { batchId: _batchId, percent: _percent, ...progress } = await handle.query(progressQuery);
        const closedStatus = { CANCELLED: 'canceled', FAILED: 'failed', TERMINATED: 'failed', TIMED_OUT: 'failed' } as const;
        summary = { id: batchId, ...progress, status: closedStatus[description.status.name as keyof typeof closedStatus] ?? progress.status };
      }
      states = await handle.query(itemsQuery, { cursor: page.cursor ?? 0, limit: page.limit ?? 1000 });
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw err;
      return mapTemporalError(err, `batch '${batchId}'`);
    }
    const { items, nextCursor } = this.withStoredResults(batchId, states.items, states.nextCursor);
    return { ...summary, version: batch.version, items, ...(nextCursor !== undefined ? { nextCursor } : {}) };
  }

  /**
   * Joins the workflow's item states with the store: client ids, results, and for finished items the stored
   * status and attempts (exact even where a sharded batch's own view is coarse).
   */
  private withStoredResults(batchId: string, states: ItemState[], nextCursor?: number): { items: ItemView[]; nextCursor?: number } {
    if (states.length === 0) return { items: [], nextCursor };
    const first = states[0]!.index;
    const span = states[states.length - 1]!.index - first + 1;
    const ids = new Map(this.store.getItems(batchId, first, span).map((i) => [i.index, i.id]));
    const stored = new Map<number, StoredResult>();
    for (const r of this.store.listResults(batchId, { cursor: first, limit: span }).results) stored.set(r.index, r);
    const items = states.map((s): ItemView => {
      const r = stored.get(s.index);
      const base: ItemView = { ...s, id: ids.get(s.index) ?? String(s.index) };
      // A stored success is final. A stored failure yields to a workflow that is running the item again.
      if (!r || (r.status === 'failed' && (s.status === 'pending' || s.status === 'running'))) return base;
      return {
        ...base,
        status: r.status,
        attempts: Math.max(s.attempts, r.attempts),
        ...(r.result ? { result: r.result } : {}),
        ...(r.error && !s.error ? { error: r.error } : {}),
      };
    });
    return { items, nextCursor };
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
