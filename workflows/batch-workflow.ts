import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { BatchStatus, BatchSummary, BatchWorkflowInput, ItemCounts, ItemStatus } from '../src/contracts/batch.js';
import {
  itemsQuery,
  progressQuery,
  type ItemState,
  type ItemsPage,
  type ItemsQueryArgs,
  type Progress,
} from './messages.js';
import { BatchFailedCountKey, BatchStatusKey, BatchStatusValue } from './search-attributes.js';

/** Error types an item activity throws for faults that retrying cannot fix. */
export const NON_RETRYABLE_ITEM_ERRORS = ['InvalidInput', 'UnknownModel', 'ModelLoadError', 'ItemNotFound'];

// Item states as compact codes: the workflow keeps one byte per item, not an object.
const STATUS_BY_CODE: readonly ItemStatus[] = ['pending', 'running', 'succeeded', 'failed', 'canceled'];
const CODE = { pending: 0, running: 1, succeeded: 2, failed: 3, canceled: 4 } as const;

/**
 * One batch: runs one `inferItem` activity per item, at most `options.concurrency` at a time, each retried
 * with exponential backoff on its own. Items and results live in the item store (claim check); the workflow
 * keeps one status byte and an attempt count per item, queryable while it runs. Cancelling it stops
 * scheduling, cancels running items and keeps every result already produced.
 */
export async function batchWorkflow(input: BatchWorkflowInput): Promise<BatchSummary> {
  const { options, total } = input;
  const { inferItem } = proxyActivities<Activities>({
    startToCloseTimeout: options.itemTimeoutMs,
    heartbeatTimeout: Math.min(options.itemTimeoutMs, 30_000),
    retry: {
      maximumAttempts: options.maxAttempts,
      initialInterval: options.initialIntervalMs,
      backoffCoefficient: options.backoffCoefficient,
      maximumInterval: options.maximumIntervalMs,
      nonRetryableErrorTypes: NON_RETRYABLE_ITEM_ERRORS,
    },
  });

  const status = new Uint8Array(total);
  const attempts = new Uint16Array(total);
  const errors = new Map<number, { type: string; message: string }>();
  const createdAt = workflowInfo().startTime.toISOString();
  let updatedAt = createdAt;
  let batchStatus: BatchStatus = 'running';

  const counts = (): ItemCounts => {
    const c: ItemCounts = { pending: 0, running: 0, succeeded: 0, failed: 0, canceled: 0 };
    for (let i = 0; i < total; i++) c[STATUS_BY_CODE[status[i]!]!]++;
    return c;
  };
  const view = (i: number): ItemState => ({
    index: i,
    status: STATUS_BY_CODE[status[i]!]!,
    attempts: attempts[i]!,
    ...(errors.has(i) ? { error: errors.get(i) } : {}),
  });
  const progress = (): Progress => {
    const c = counts();
    const done = c.succeeded + c.failed + c.canceled;
    return {
      batchId: input.batchId,
      model: input.model,
      status: batchStatus,
      total,
      counts: c,
      percent: total === 0 ? 100 : Math.round((done / total) * 10_000) / 100,
      createdAt,
      updatedAt,
    };
  };

  setHandler(progressQuery, progress);
  setHandler(itemsQuery, (args: ItemsQueryArgs = {}): ItemsPage => {
    const limit = Math.min(Math.max(args.limit ?? 100, 1), 1000);
    const page: ItemState[] = [];
    let i = Math.max(args.cursor ?? 0, 0);
    for (; i < total && page.length < limit; i++) {
      if (args.status === undefined || STATUS_BY_CODE[status[i]!] === args.status) page.push(view(i));
    }
    return i < total ? { items: page, nextCursor: i } : { items: page };
  });

  const setState = (i: number, code: number) => {
    status[i] = code;
    updatedAt = new Date().toISOString();
  };

  let next = 0;
  let canceled = false;
  const runItem = async (i: number): Promise<void> => {
    setState(i, CODE.running);
    try {
      const { attempt } = await inferItem({
        batchId: input.batchId,
        index: i,
        model: input.model,
        version: input.version,
        maxAttempts: options.maxAttempts,
      });
      attempts[i] = attempt;
      setState(i, CODE.succeeded);
    } catch (err) {
      if (isCancellation(err)) {
        canceled = true;
        setState(i, CODE.canceled);
        return;
      }
      const failure = describeFailure(err, options.maxAttempts);
      attempts[i] = failure.attempts;
      errors.set(i, { type: failure.type, message: failure.message });
      setState(i, CODE.failed);
    }
  };
  const lane = async (): Promise<void> => {
    while (next < total && !canceled) await runItem(next++);
  };

  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, total) }, lane));
  } catch (err) {
    if (!isCancellation(err)) throw err;
    canceled = true;
  }
  if (canceled || CancellationScope.current().consideredCancelled) {
    for (let i = 0; i < total; i++) if (status[i] === CODE.pending || status[i] === CODE.running) status[i] = CODE.canceled;
  }

  const final = counts();
  batchStatus = canceled ? 'canceled' : 'completed';
  updatedAt = new Date().toISOString();
  upsertSearchAttributes([
    { key: BatchStatusKey, value: BatchStatusValue[batchStatus] },
    { key: BatchFailedCountKey, value: final.failed },
  ]);
  if (canceled) {
    // Temporal records the batch as Canceled; the queries above still answer for it.
    throw new CancelledFailure('batch canceled');
  }
  const { batchId: _batchId, percent: _percent, ...summary } = progress();
  return { id: input.batchId, version: input.version, ...summary };
}

/** Pulls the item's error type, message and attempt count out of an activity failure. */
function describeFailure(err: unknown, maxAttempts: number): { type: string; message: string; attempts: number } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const app = cause instanceof ApplicationFailure ? cause : undefined;
  const detail = app?.details?.[0] as { attempt?: number } | undefined;
  const attempts =
    detail?.attempt ?? (err instanceof ActivityFailure && err.retryState === 'MAXIMUM_ATTEMPTS_REACHED' ? maxAttempts : 1);
  return {
    type: app?.type ?? (cause as Error | undefined)?.name ?? 'Error',
    message: (cause as Error | undefined)?.message ?? String(err),
    attempts,
  };
}
