import { randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { BatchView, BatchWorkflowInput, CreateBatchRequest, ItemView } from '../contracts/batch.js';
import { batchWorkflow } from '../../workflows/batch-workflow.js';
import { itemsQuery, progressQuery, type ItemsPage } from '../../workflows/messages.js';
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
  ) {}

  /** Connects lazily: the API starts even while Temporal is down and answers 503 until it is back. */
  static create(options: BatchClientOptions): BatchClient {
    const connection = Connection.lazy({ address: options.address, connectTimeout: '5s' });
    const client = new Client({ connection, namespace: options.namespace });
    return new BatchClient(connection, client, options.taskQueue);
  }

  /** Starts a batch workflow for a validated request; returns the new batch id. */
  async submit(request: CreateBatchRequest): Promise<string> {
    const batchId = newBatchId();
    const input: BatchWorkflowInput = {
      batchId,
      model: request.model,
      version: request.version,
      items: request.items.map((item, i) => ({ id: item.id ?? String(i), inputs: item.inputs })),
      options: request.options,
    };
    try {
      await this.client.workflow.start(batchWorkflow, {
        workflowId: batchWorkflowId(batchId),
        taskQueue: this.taskQueue,
        args: [input],
        memo: { model: request.model, version: request.version ?? null, items: input.items.length, metadata: request.metadata ?? {} },
        typedSearchAttributes: [
          { key: BatchModelKey, value: request.model },
          { key: BatchStatusKey, value: BatchStatusValue.running },
          { key: BatchItemCountKey, value: input.items.length },
        ],
      });
    } catch (err) {
      mapTemporalError(err, 'batch');
    }
    return batchId;
  }

  /** The batch's state: live from the workflow while it runs, from its result (or a query) once closed. */
  async get(batchId: string): Promise<BatchView> {
    const handle = this.client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(batchId));
    try {
      const description = await handle.describe();
      if (description.status.name === 'COMPLETED') return await handle.result();
      const progress = await handle.query(progressQuery);
      const items: ItemView[] = [];
      let cursor: number | undefined = 0;
      while (cursor !== undefined) {
        const page: ItemsPage = await handle.query(itemsQuery, { cursor, limit: 1000 });
        items.push(...page.items);
        cursor = page.nextCursor;
      }
      const closedStatus = { CANCELLED: 'canceled', FAILED: 'failed', TERMINATED: 'failed', TIMED_OUT: 'failed' } as const;
      const status = closedStatus[description.status.name as keyof typeof closedStatus] ?? progress.status;
      const { batchId: _batchId, percent: _percent, ...summary } = progress;
      return { id: batchId, ...summary, status, items };
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw err;
      return mapTemporalError(err, `batch '${batchId}'`);
    }
  }

  /** True when the Temporal frontend answers a health check. */
  async ping(): Promise<boolean> {
    try {
      await this.connection.ensureConnected();
      await this.connection.healthService.check({});
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
