import { newHexId } from '../contracts/ids.js';
import { Client, Connection, WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import {
  itemOutcome,
  type BatchEnd,
  type BatchListPage,
  type BatchStatus,
  type BatchSummary,
  type BatchView,
  type BatchWorkflowInput,
  type CreateBatchRequest,
  type ItemCounts,
  type ItemDetail,
  type ItemStatus,
  type ItemView,
} from '../contracts/batch.js';
import { webhookWorkflowId, type StoredWebhook } from '../contracts/webhook.js';
import { ConflictError, InvalidRequestError, NotFoundError } from '../errors.js';
import type { ItemStore, StoredBatch, StoredResult } from '../stores/item-store.js';
import { batchWorkflow } from '../../workflows/batch-workflow.js';
import { ITEM_WORKFLOW_TASK_TIMEOUT_MS } from '../../workflows/workflow-task-timeout.js';
import {
  cancelSignal,
  setConcurrencySignal,
  itemQuery,
  itemsQuery,
  pauseSignal,
  resumeSignal,
  retryFailedUpdate,
  runningQuery,
  type ItemState,
  type RunningRange,
} from '../../workflows/messages.js';
import {
  BatchItemCountKey,
  BatchModelKey,
  BatchStatusKey,
  BatchStatusValue,
  BatchTenantKey,
} from '../../workflows/search-attributes.js';
import { webhookWorkflow } from '../../workflows/webhook-workflow.js';
import { batchWorkflowId, recordMissingEnd, summaryOf } from './batch-end.js';
import { apiConnection } from './connection.js';
import { RecentAnswers } from './recent-answers.js';
import { isRefusedPageToken, mapTemporalError } from './temporal-errors.js';

export interface BatchClientOptions {
  address: string;
  namespace: string;
  taskQueue: string;
}

export { batchWorkflowId } from './batch-end.js';

/** Who submits a batch: the API key's tenant, and where its events go. */
export interface BatchOwner {
  tenant: string;
  webhook?: StoredWebhook;
}

/** temporal.api.enums.v1.WorkflowExecutionStatus as visibility returns it. */
const EXECUTION_STATUS: Record<number, BatchStatus | undefined> = {
  1: 'running',
  3: 'failed',
  4: 'canceled',
  5: 'failed',
  7: 'failed',
};

/**
 * The workflow's counts, with any successes the store holds that the workflow has not counted yet (a success is
 * recorded before the workflow hears of it, and is final) taken from its running items, then its pending ones.
 */
export function withStoredSuccesses(counts: ItemCounts, stored: { succeeded: number }): ItemCounts {
  const ahead = Math.max(0, stored.succeeded - counts.succeeded);
  const fromRunning = Math.min(ahead, counts.running);
  const fromPending = Math.min(ahead - fromRunning, counts.pending);
  return {
    ...counts,
    succeeded: counts.succeeded + fromRunning + fromPending,
    running: counts.running - fromRunning,
    pending: counts.pending - fromPending,
  };
}

/**
 * The Temporal client facade for the API and CLI: starts, reads and steers batch workflows, and maps Temporal's
 * errors to the app's (unknown batch -> NotFoundError, unreachable cluster -> UnavailableError). A batch is
 * visible only to its tenant: another tenant's id is NotFoundError, as if it did not exist.
 */
export class BatchClient {
  /** A running batch's summary and running ranges: recent answers of its workflow, shared by this process's readers. */
  private readonly liveSummaries = new RecentAnswers((batchId) => this.liveSummary(batchId));
  private readonly runningRanges = new RecentAnswers((batchId) => this.queryRunning(batchId));

  private constructor(
    private readonly connection: Connection,
    readonly client: Client,
    private readonly taskQueue: string,
    /** The item store the batches' items and results live in (the API stages NDJSON uploads in it). */
    readonly store: ItemStore,
  ) {}

  /** Connects lazily: the API starts even while Temporal is down and answers 503 until it is back. */
  static create(options: BatchClientOptions, store: ItemStore): BatchClient {
    const connection = apiConnection(options.address);
    const client = new Client({ connection, namespace: options.namespace });
    return new BatchClient(connection, client, options.taskQueue, store);
  }

  /** Stores a validated batch's items (claim check) and starts it; returns the new batch id. */
  async submit(request: CreateBatchRequest, owner: BatchOwner = { tenant: 'default' }): Promise<string> {
    const batch: StoredBatch = {
      id: newHexId(),
      model: request.model,
      ...(request.version !== undefined ? { version: request.version } : {}),
      total: request.items.length,
      options: request.options,
      ...(request.metadata ? { metadata: request.metadata } : {}),
      createdAt: new Date().toISOString(),
      tenant: owner.tenant,
      ...(owner.webhook ? { webhook: owner.webhook } : {}),
    };
    await this.store.createBatch(batch, request.items);
    await this.start(batch);
    return batch.id;
  }

  /**
   * Starts the workflows of a stored batch: its webhook deliveries (when registered), then the batch, which
   * carries only ids and counts. If either cannot start, the stored batch is removed again and nothing runs.
   */
  async start(batch: StoredBatch): Promise<void> {
    const input: BatchWorkflowInput = {
      batchId: batch.id,
      model: batch.model,
      version: batch.version,
      total: batch.total,
      options: batch.options,
    };
    let webhooks: Awaited<ReturnType<Client['workflow']['start']>> | undefined;
    try {
      if (batch.webhook) {
        webhooks = await this.client.workflow.start(webhookWorkflow, {
          workflowId: webhookWorkflowId(batch.id),
          taskQueue: this.taskQueue,
          args: [{ batchId: batch.id }],
        });
      }
      await this.client.workflow.start(batchWorkflow, {
        workflowId: batchWorkflowId(batch.id),
        taskQueue: this.taskQueue,
        args: [input],
        workflowTaskTimeout: ITEM_WORKFLOW_TASK_TIMEOUT_MS,
        memo: {
          model: batch.model,
          version: batch.version ?? null,
          items: batch.total,
          metadata: batch.metadata ?? {},
        },
        typedSearchAttributes: [
          { key: BatchModelKey, value: batch.model },
          { key: BatchStatusKey, value: BatchStatusValue.running },
          { key: BatchItemCountKey, value: batch.total },
          { key: BatchTenantKey, value: batch.tenant },
        ],
      });
    } catch (err) {
      await webhooks?.terminate('the batch could not start').catch(() => undefined);
      await this.store.deleteBatch(batch.id);
      mapTemporalError(err, 'batch');
    }
  }

  /** The stored batch, if it exists and belongs to `tenant` (undefined: any tenant, for internal callers). */
  async requireBatch(batchId: string, tenant?: string): Promise<StoredBatch> {
    const batch = await this.store.getBatch(batchId);
    if (!batch || (tenant !== undefined && batch.tenant !== tenant))
      throw new NotFoundError(`batch '${batchId}' not found`);
    return batch;
  }

  /**
   * Counts, status and rate: the recorded end once the batch has ended (from the item store alone), the workflow's
   * progress query while it runs (a recent answer, see RecentAnswers), with the successes the store already holds:
   * a reader that has seen a result never sees a count without it.
   */
  async summary(batchId: string, tenant?: string): Promise<BatchSummary> {
    const batch = await this.requireBatch(batchId, tenant);
    const version = batch.version !== undefined ? { version: batch.version } : {};
    const ended = await this.store.getEnd(batchId);
    if (ended) return { ...ended.summary, ...version };
    const live = await this.liveSummaries.get(batchId);
    return { ...live, counts: withStoredSuccesses(live.counts, await this.store.countResults(batchId)), ...version };
  }

  /** The summary of a batch whose end is not recorded, from Temporal; recorded now if its workflow has closed. */
  private async liveSummary(batchId: string): Promise<BatchSummary> {
    try {
      const execution = (await this.handle(batchId).describe()).status.name;
      const summary = await summaryOf(this.client, batchId, execution);
      if (execution !== 'RUNNING' && execution !== 'CONTINUED_AS_NEW') {
        // Closed without recording its end (terminated, or from before ends were recorded): recorded now, so the
        // store's readers and retention see it too.
        const { failures: _failures, ...final } = summary;
        await this.store.endBatch(batchId, {
          status: final.status === 'running' ? 'failed' : final.status,
          summary: final,
        });
      }
      return summary;
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw err;
      return mapTemporalError(err, `batch '${batchId}'`);
    }
  }

  /**
   * How the batch ended, or undefined while it runs: the end its workflow recorded in the item store, else (a
   * batch terminated, or ended before ends were recorded) Temporal's word, which is then recorded.
   */
  async outcome(batchId: string): Promise<BatchEnd | undefined> {
    return (await this.store.getEnd(batchId)) ?? recordMissingEnd(this.client, this.store, batchId);
  }

  /**
   * One page of items in index order, optionally in one state. Finished states come from the item store (exact,
   * and cheap at any size); pending, running and canceled from the workflow.
   */
  async items(
    batchId: string,
    tenant: string | undefined,
    page: { status?: ItemStatus; cursor?: number; limit?: number } = {},
  ): Promise<{ items: ItemView[]; nextCursor?: number }> {
    await this.requireBatch(batchId, tenant);
    const limit = page.limit ?? 100;
    if (page.status === 'succeeded' || page.status === 'failed') {
      const stored = await this.store.listResults(batchId, { cursor: page.cursor, limit, status: page.status });
      const items = stored.results.map((r): ItemView => ({ ...itemOutcome(r), startedAt: r.startedAt }));
      return { items, ...(stored.nextCursor !== undefined ? { nextCursor: stored.nextCursor } : {}) };
    }
    try {
      const states = await this.handle(batchId).query(itemsQuery, {
        status: page.status,
        cursor: page.cursor ?? 0,
        limit,
      });
      const joined = await this.withStoredResults(batchId, states.items, states.nextCursor);
      // The stored outcome overrides what the workflow knows (a sharded batch knows ended shards' items only
      // roughly), so an item can leave the filter: a page may then be short, its cursor still goes on.
      if (page.status === undefined) return joined;
      return { ...joined, items: joined.items.filter((i) => i.status === page.status) };
    } catch (err) {
      return mapTemporalError(err, `batch '${batchId}'`);
    }
  }

  /**
   * Where a running batch's items run (runningQuery, a recent answer): exact ranges in index order, a sharded
   * batch's from each running shard. No scan of the batch.
   */
  async running(batchId: string, tenant?: string): Promise<RunningRange[]> {
    await this.requireBatch(batchId, tenant);
    try {
      return await this.runningRanges.get(batchId);
    } catch (err) {
      return mapTemporalError(err, `batch '${batchId}'`);
    }
  }

  /**
   * The batch's running ranges, a running shard's from the shard itself (exact, and current: the count its parent
   * holds is as old as the shard's last report); a shard that has just ended leaves its parent's word.
   */
  private async queryRunning(batchId: string): Promise<RunningRange[]> {
    const ranges = await this.handle(batchId).query(runningQuery);
    const exact = await Promise.all(
      ranges.map(async (r) => {
        if (r.shard === undefined) return [r];
        try {
          return await this.client.workflow.getHandle(r.shard).query(runningQuery);
        } catch {
          return [r];
        }
      }),
    );
    return exact.flat();
  }

  /**
   * One item by its client id, with its inputs: the workflow's state of the item joined with the store's.
   */
  async item(batchId: string, tenant: string | undefined, itemId: string): Promise<ItemDetail> {
    await this.requireBatch(batchId, tenant);
    const index = await this.store.findItemIndex(batchId, itemId);
    if (index === undefined) throw new NotFoundError(`item '${itemId}' not found in batch '${batchId}'`);
    const [stored] = await this.store.getItems(batchId, index, 1);
    const inputs = stored?.inputs ?? {};
    let state: ItemState | null;
    try {
      state = await this.handle(batchId).query(itemQuery, { index });
    } catch (err) {
      return mapTemporalError(err, `batch '${batchId}'`);
    }
    const [view] = (await this.withStoredResults(batchId, [state ?? { index, status: 'pending', attempts: 0 }])).items;
    return { ...view!, inputs };
  }

  /** The summary and one page of items (the view the workflow tests read). */
  async get(batchId: string, page: { cursor?: number; limit?: number } = {}): Promise<BatchView> {
    const summary = await this.summary(batchId);
    return {
      ...summary,
      ...(await this.items(batchId, undefined, { cursor: page.cursor, limit: page.limit ?? 1000 })),
    };
  }

  /** A tenant's batches, newest first, from Temporal visibility; `cursor` is the previous page's nextCursor. */
  async list(
    tenant: string,
    filter: { status?: BatchStatus; model?: string; cursor?: string; limit: number },
  ): Promise<BatchListPage> {
    const q = (v: string) => `'${v.replace(/['\\]/g, '')}'`;
    const clauses = [
      `WorkflowType = 'batchWorkflow'`,
      `BatchTenant = ${q(tenant)}`,
      `ExecutionStatus != 'ContinuedAsNew'`,
    ];
    if (filter.model) clauses.push(`BatchModel = ${q(filter.model)}`);
    const byStatus: Record<BatchStatus, string> = {
      running: `ExecutionStatus = 'Running'`,
      completed: `ExecutionStatus = 'Completed' AND BatchStatus = 'Completed'`,
      canceled: `(ExecutionStatus = 'Canceled' OR (ExecutionStatus = 'Completed' AND BatchStatus = 'Canceled'))`,
      failed: `ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut')`,
    };
    if (filter.status) clauses.push(byStatus[filter.status]);
    const listing = { namespace: this.client.options.namespace, query: clauses.join(' AND ') };
    try {
      const res = await this.client.workflowService.listWorkflowExecutions({
        ...listing,
        pageSize: filter.limit,
        nextPageToken: filter.cursor ? Buffer.from(filter.cursor, 'base64url') : undefined,
      });
      const executions = res.executions ?? [];
      const storedBatches = await Promise.all(
        executions.map((e) => this.store.getBatch(e.execution?.workflowId?.replace(/^batch-/, '') ?? '')),
      );
      const batches = executions.flatMap((e, i) => {
        const stored = storedBatches[i];
        if (!stored) return [];
        const attrs = e.searchAttributes?.indexedFields ?? {};
        const attr = (name: string): unknown => {
          const data = attrs[name]?.data;
          return data ? JSON.parse(Buffer.from(data).toString()) : undefined;
        };
        const fromAttr = {
          Completed: 'completed',
          Canceled: 'canceled',
          Failed: 'failed',
          Running: 'running',
        } as Record<string, BatchStatus>;
        const execution = EXECUTION_STATUS[e.status ?? 0];
        const status: BatchStatus = execution ?? fromAttr[String(attr('BatchStatus'))] ?? 'completed';
        const id = stored.id;
        return [
          {
            id,
            model: stored.model,
            ...(stored.version !== undefined ? { version: stored.version } : {}),
            status,
            total: stored.total,
            failed: Number(attr('BatchFailedCount') ?? 0),
            createdAt: stored.createdAt,
            ...(stored.metadata ? { metadata: stored.metadata } : {}),
            links: { self: `/v1/batches/${id}` },
          },
        ];
      });
      const token =
        res.nextPageToken && res.nextPageToken.length > 0
          ? Buffer.from(res.nextPageToken).toString('base64url')
          : undefined;
      return { batches, ...(token ? { nextCursor: token } : {}) };
    } catch (err) {
      // The SQL visibility store answers a token it cannot use as it answers its own faults (UNKNOWN): the same
      // listing without the cursor tells them apart, so a server fault is never blamed on the client's cursor.
      if (filter.cursor && isRefusedPageToken(err) && (await this.lists(listing))) {
        const message = 'not a cursor this API gave out (use nextCursor from a listing)';
        throw new InvalidRequestError(`cursor: ${message}`, [{ path: ['cursor'], message }]);
      }
      return mapTemporalError(err, 'batches');
    }
  }

  /** Whether visibility answers a listing's first page (one execution): the listing itself is not at fault. */
  private async lists(listing: { namespace: string; query: string }): Promise<boolean> {
    try {
      await this.client.workflowService.listWorkflowExecutions({ ...listing, pageSize: 1 });
      return true;
    } catch {
      return false;
    }
  }

  /** Sends cancel, pause or resume; 409 once the batch has ended. */
  async control(batchId: string, tenant: string | undefined, action: 'cancel' | 'pause' | 'resume'): Promise<void> {
    await this.requireBatch(batchId, tenant);
    await this.requireRunning(batchId);
    const signal = { cancel: cancelSignal, pause: pauseSignal, resume: resumeSignal }[action];
    try {
      await this.handle(batchId).signal(signal);
    } catch (err) {
      mapTemporalError(err, `batch '${batchId}'`);
    }
    this.forget(batchId);
  }

  /** Changes how many of the batch's items may run at once (every shard's window too); 409 once it has ended. */
  async setConcurrency(batchId: string, tenant: string | undefined, concurrency: number): Promise<void> {
    await this.requireBatch(batchId, tenant);
    await this.requireRunning(batchId);
    try {
      await this.handle(batchId).signal(setConcurrencySignal, { concurrency });
    } catch (err) {
      mapTemporalError(err, `batch '${batchId}'`);
    }
    this.forget(batchId);
  }

  /** Runs the batch's failed items again; 409 once the batch has ended. */
  async retryFailed(batchId: string, tenant: string | undefined): Promise<{ retried: number }> {
    await this.requireBatch(batchId, tenant);
    await this.requireRunning(batchId);
    try {
      return await this.handle(batchId).executeUpdate(retryFailedUpdate);
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError)
        throw new ConflictError(`batch '${batchId}': ${err.cause?.message ?? err.message}`);
      return mapTemporalError(err, `batch '${batchId}'`);
    } finally {
      this.forget(batchId);
    }
  }

  /** Drops the recent answers of a batch this process just changed, so its next reader sees the change. */
  private forget(batchId: string): void {
    this.liveSummaries.forget(batchId);
    this.runningRanges.forget(batchId);
  }

  private async requireRunning(batchId: string): Promise<void> {
    const end = await this.outcome(batchId);
    if (end) throw new ConflictError(`batch '${batchId}' has ended (${end.status})`);
  }

  private handle(batchId: string) {
    return this.client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(batchId));
  }

  /**
   * Joins the workflow's item states with the store: client ids, results, and for finished items the stored
   * status and attempts (exact even where a sharded batch's own view is coarse).
   */
  private async withStoredResults(
    batchId: string,
    states: ItemState[],
    nextCursor?: number,
  ): Promise<{ items: ItemView[]; nextCursor?: number }> {
    if (states.length === 0) return { items: [], ...(nextCursor !== undefined ? { nextCursor } : {}) };
    const first = states[0]!.index;
    const span = states[states.length - 1]!.index - first + 1;
    const ids = new Map((await this.store.getItems(batchId, first, span)).map((i) => [i.index, i.id]));
    const stored = new Map<number, StoredResult>();
    for (const r of (await this.store.listResults(batchId, { cursor: first, limit: span })).results)
      stored.set(r.index, r);
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
    return { items, ...(nextCursor !== undefined ? { nextCursor } : {}) };
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
