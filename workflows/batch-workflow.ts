import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  sleep,
  workflowInfo,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type {
  BatchStatus,
  BatchSummary,
  BatchWorkflowInput,
  CarriedRange,
  ItemCounts,
  ItemStatus,
} from '../src/contracts/batch.js';
import { rle, unrle } from './carried-state.js';
import { runShards } from './shards.js';
import {
  cancelSignal,
  failuresQuery,
  itemQuery,
  itemsQuery,
  MAX_CONCURRENCY,
  pauseSignal,
  progressQuery,
  resumeSignal,
  retryFailedSignal,
  retryFailedUpdate,
  setConcurrencySignal,
  shardProgressSignal,
  toProgress,
  type ItemState,
  type ItemsPage,
  type Progress,
} from './messages.js';
import { BatchFailedCountKey, BatchStatusKey, BatchStatusValue } from './search-attributes.js';

/** Item errors a run carries across continue-as-new or returns to its parent (~150 bytes each, at most). */
const MAX_CARRIED_ERRORS = 1000;

/** Error types an item activity throws for faults that retrying cannot fix. */
export const NON_RETRYABLE_ITEM_ERRORS = ['InvalidInput', 'UnknownModel', 'ModelLoadError', 'ItemNotFound'];

/**
 * The workflow task timeout of a batch's executions. A workflow task stays open while local activities run; the
 * worker completes it at 80% of this timeout to record their results, and only then do signals, updates and
 * queries get an answer. Temporal's default of 10 s would let steering wait 8 s, so batches with local item
 * activities use 5 s (answers within about 4 s). Per-item throughput in one bench/tune.ts run each: 3 s 593
 * items/s, 5 s 645, 10 s 772. Remote: Temporal's default.
 */
export function batchWorkflowTaskTimeout(options: Pick<BatchWorkflowInput['options'], 'itemActivities'>): string | undefined {
  return options.itemActivities === 'local' ? '5s' : undefined;
}

// Item states as compact codes: the workflow keeps a few bytes per item, not an object.
const STATUS_BY_CODE: readonly ItemStatus[] = ['pending', 'running', 'succeeded', 'failed', 'canceled'];
const CODE = { pending: 0, running: 1, succeeded: 2, failed: 3, canceled: 4 } as const;

/**
 * One batch: runs one `inferItem` activity per item, at most `concurrency` at a time, each retried with
 * exponential backoff on its own. Items and results live in the item store (claim check); the workflow keeps a
 * status byte, an attempt count and two timestamps per item, queryable while it runs. Signals pause, resume,
 * re-size or cancel it; the retryFailed update re-runs the dead-letter set. Cancelling (by signal or by
 * Temporal) stops scheduling, cancels running items, marks the rest canceled and keeps every finished result.
 */
export async function batchWorkflow(input: BatchWorkflowInput): Promise<BatchSummary> {
  const shardSize = input.options.shardSize ?? Infinity; // absent in batches started before sharding
  if (!input.range && (input.total > shardSize || input.carried?.kind === 'shards')) return runShards(input);
  return runItems(input);
}

/** Runs the batch's items (or a shard's range of them) as activities in this workflow. */
async function runItems(input: BatchWorkflowInput): Promise<BatchSummary> {
  const { options } = input;
  // This run's items: the whole batch, or a shard's range [lo, hi) of it (global indices throughout).
  const lo = input.range?.start ?? 0;
  const hi = input.range?.end ?? input.total;
  const total = hi - lo;
  const retryPolicy = {
    maximumAttempts: options.maxAttempts,
    initialInterval: options.initialIntervalMs,
    backoffCoefficient: options.backoffCoefficient,
    maximumInterval: options.maximumIntervalMs,
    nonRetryableErrorTypes: NON_RETRYABLE_ITEM_ERRORS,
  };
  // Local activities (absent in batches started before them: remote) run inside the workflow task on the worker
  // that holds it: one marker event per item and no trip through the server's matching, at the price of
  // heartbeats (a long item is bounded by itemTimeoutMs only) and of keeping a shard's items on one worker.
  const local = options.itemActivities === 'local';
  const activityOptions: ActivityOptions & LocalActivityOptions = local
    ? { startToCloseTimeout: options.itemTimeoutMs, retry: retryPolicy }
    : { startToCloseTimeout: options.itemTimeoutMs, heartbeatTimeout: Math.min(options.itemTimeoutMs, 30_000), retry: retryPolicy };
  const { inferItem, inferChunk } = local
    ? proxyLocalActivities<Activities>(activityOptions)
    : proxyActivities<Activities>(activityOptions);
  const chunkSize = options.itemsPerActivity ?? 1; // absent in batches started before chunked mode

  const status = new Uint8Array(total);
  const attempts = new Uint16Array(total);
  // Seconds since the batch started, +1 (0 = not yet), so two Uint32s per item carry the timings.
  const startedAt = new Uint32Array(total);
  const finishedAt = new Uint32Array(total);
  const errors = new Map<number, { type: string; message: string }>();
  const counts: ItemCounts = { pending: total, running: 0, succeeded: 0, failed: 0, canceled: 0 };
  const started = input.startedAtMs ?? workflowInfo().startTime.getTime();
  const createdAt = new Date(started).toISOString();
  let updatedAt = createdAt;
  let batchStatus: BatchStatus = 'running';
  let paused = false;
  let concurrency = options.concurrency;
  let canceled = false;
  let cursor = lo; // next never-run item
  const retryQueue: number[] = []; // dead-letter items queued by retryFailed
  let inFlight = 0;
  let draining = false; // history is long: finish what runs, then continue as new
  let finishing = false;
  let reportedFailures = 0;
  let reportedAt = 0;
  const carried = input.carried?.kind === 'range' ? input.carried : undefined;
  if (carried) {
    unrle(carried.status, status);
    unrle(carried.attempts, attempts);
    unrle(carried.startedAt, startedAt);
    unrle(carried.finishedAt, finishedAt);
    for (const [i, type, message] of carried.errors) errors.set(i, { type, message });
    counts.pending = 0;
    for (let k = 0; k < total; k++) counts[STATUS_BY_CODE[status[k]!]!]++;
    cursor = carried.cursor;
    retryQueue.push(...carried.retryQueue);
    paused = carried.paused;
    concurrency = carried.concurrency;
    reportedFailures = counts.failed;
  }

  const stamp = () => Math.floor((Date.now() - started) / 1000) + 1;
  const iso = (s: number) => (s === 0 ? undefined : new Date(started + (s - 1) * 1000).toISOString());
  const setState = (i: number, code: number) => {
    counts[STATUS_BY_CODE[status[i - lo]!]!]--;
    counts[STATUS_BY_CODE[code]!]++;
    status[i - lo] = code;
    updatedAt = new Date().toISOString();
  };
  const view = (i: number): ItemState => ({
    index: i,
    status: STATUS_BY_CODE[status[i - lo]!]!,
    attempts: attempts[i - lo]!,
    ...(startedAt[i - lo] ? { startedAt: iso(startedAt[i - lo]!) } : {}),
    ...(finishedAt[i - lo] ? { finishedAt: iso(finishedAt[i - lo]!) } : {}),
    ...(errors.has(i) ? { error: errors.get(i) } : {}),
  });
  const page = (filter: (i: number) => boolean, from = 0, limit = 100): ItemsPage => {
    const max = Math.min(Math.max(limit, 1), 1000);
    const items: ItemState[] = [];
    let i = Math.max(from, lo);
    for (; i < hi && items.length < max; i++) if (filter(i)) items.push(view(i));
    return i < hi ? { items, nextCursor: i } : { items };
  };
  const progress = (): Progress =>
    toProgress(
      { batchId: input.batchId, model: input.model, status: batchStatus, paused, concurrency, total, counts, createdAt, updatedAt },
      started,
      Date.now(),
    );

  setHandler(progressQuery, progress);
  setHandler(itemQuery, ({ index }) => (Number.isInteger(index) && index >= lo && index < hi ? view(index) : null));
  setHandler(itemsQuery, (args = {}) =>
    page((i) => args.status === undefined || STATUS_BY_CODE[status[i - lo]!] === args.status, args.cursor, args.limit),
  );
  setHandler(failuresQuery, (args = {}) => page((i) => status[i - lo] === CODE.failed, args.cursor, args.limit));

  // Every item activity runs in this scope, so a cancel signal can cancel them all; Temporal's own cancellation
  // reaches them through the root scope it hangs from.
  const items = new CancellationScope();
  const cancel = () => {
    if (canceled) return;
    canceled = true;
    items.cancel();
  };
  setHandler(cancelSignal, cancel);
  setHandler(pauseSignal, () => {
    paused = true;
  });
  setHandler(resumeSignal, () => {
    paused = false;
  });
  setHandler(setConcurrencySignal, ({ concurrency: n }) => {
    if (Number.isInteger(n) && n >= 1 && n <= MAX_CONCURRENCY) concurrency = n;
  });
  const retryFailed = () => {
    let retried = 0;
    for (let i = lo; i < hi; i++) {
      if (status[i - lo] !== CODE.failed) continue;
      errors.delete(i);
      setState(i, CODE.pending);
      retryQueue.push(i);
      retried++;
    }
    return { retried };
  };
  if (input.range) {
    setHandler(retryFailedSignal, () => {
      if (!canceled && !finishing) retryFailed();
    });
  }
  setHandler(
    retryFailedUpdate,
    retryFailed,
    {
      validator: () => {
        if (canceled) throw new Error('the batch is canceled');
        if (finishing) throw new Error('the batch has finished');
      },
    },
  );

  /**
   * Only a local activity is cancelled without the batch asking: its worker dropped the workflow from its cache
   * (an eviction) while the item ran or waited out a retry. Its items run again rather than count as canceled.
   */
  const evicted = (err: unknown) => isCancellation(err) && !items.consideredCancelled;

  const fail = (i: number, type: string, message: string) => {
    errors.set(i, { type, message });
    setState(i, CODE.failed);
    finishedAt[i - lo] = stamp();
  };

  /**
   * Runs item i's inferItem activity and records its outcome. `afterChunk`: a chunk item that failed retryably
   * is retried on its own, continuing the batch's backoff: the chunk was attempt 1, so the next comes after
   * initialInterval, then initialInterval x coefficient, and so on.
   */
  const attemptItem = async (i: number, afterChunk = false): Promise<void> => {
    const maxAttempts = afterChunk ? options.maxAttempts - 1 : options.maxAttempts;
    try {
      if (afterChunk) await items.run(() => sleep(options.initialIntervalMs));
      const retry = afterChunk
        ? {
            retry: {
              ...activityOptions.retry,
              maximumAttempts: maxAttempts,
              initialInterval: Math.min(options.initialIntervalMs * options.backoffCoefficient, options.maximumIntervalMs),
            },
          }
        : {};
      const summary = `item ${i} of batch ${input.batchId}${afterChunk ? ' (retry after its chunk)' : ''}`;
      const { attempt } = await items.run(() =>
        inferItem.executeWithOptions({ ...activityOptions, ...retry, summary }, [
          { batchId: input.batchId, index: i, model: input.model, version: input.version, maxAttempts },
        ]),
      );
      attempts[i - lo] = attempts[i - lo]! + attempt;
      setState(i, CODE.succeeded);
      finishedAt[i - lo] = stamp();
    } catch (err) {
      if (evicted(err)) return attemptItem(i, afterChunk);
      if (isCancellation(err)) {
        setState(i, CODE.canceled);
        finishedAt[i - lo] = stamp();
        return;
      }
      const failure = describeFailure(err, maxAttempts);
      attempts[i - lo] = attempts[i - lo]! + failure.attempts;
      fail(i, failure.type, failure.message);
    }
  };

  const runItem = async (i: number): Promise<void> => {
    setState(i, CODE.running);
    if (!startedAt[i - lo]) startedAt[i - lo] = stamp();
    await attemptItem(i);
  };

  /** Items [start, start + count) in one inferChunk activity; its failed items fail or retry one by one. */
  const runChunk = async (start: number, count: number): Promise<void> => {
    const first = stamp();
    for (let i = start; i < start + count; i++) {
      setState(i, CODE.running);
      startedAt[i - lo] = first;
    }
    let failures: { index: number; type: string; message: string; nonRetryable: boolean }[];
    try {
      const out = await items.run(() =>
        inferChunk.executeWithOptions({ ...activityOptions, summary: `items ${start}-${start + count - 1} of batch ${input.batchId}` }, [
          { batchId: input.batchId, start, count, model: input.model, version: input.version, maxAttempts: options.maxAttempts },
        ]),
      );
      failures = out.failures;
    } catch (err) {
      if (evicted(err)) return runChunk(start, count);
      const code = isCancellation(err) ? CODE.canceled : CODE.failed;
      const failure = code === CODE.failed ? describeFailure(err, options.maxAttempts) : undefined;
      for (let i = start; i < start + count; i++) {
        if (failure) {
          attempts[i - lo] = attempts[i - lo]! + failure.attempts;
          fail(i, failure.type, failure.message);
        } else {
          setState(i, code);
        }
      }
      return;
    }
    const failed = new Map(failures.map((f) => [f.index, f]));
    const retries: Promise<void>[] = [];
    const done = stamp();
    for (let i = start; i < start + count; i++) {
      attempts[i - lo] = attempts[i - lo]! + 1;
      const f = failed.get(i);
      if (!f) {
        setState(i, CODE.succeeded);
        finishedAt[i - lo] = done;
      } else if (f.nonRetryable || options.maxAttempts <= 1) {
        fail(i, f.type, f.message);
      } else {
        retries.push(attemptItem(i, true));
      }
    }
    await Promise.all(retries);
  };

  /** A shard tells its parent its counts, at most every 2 s and once at the end. */
  let progressSentAt = 0;
  const reportProgress = (force = false) => {
    if (!input.parentWorkflowId || (!force && Date.now() - progressSentAt < 2000)) return;
    progressSentAt = Date.now();
    void getExternalWorkflowHandle(input.parentWorkflowId)
      .signal(shardProgressSignal, { start: lo, counts: { ...counts } })
      .catch(() => undefined); // a parent that has moved on does not fail its shard
  };

  /** Keeps BatchFailedCount current for visibility queries, at most every 5 s (each upsert is a history event). */
  const reportFailures = () => {
    reportProgress();
    if (input.parentWorkflowId) return; // a shard's failures are counted by its parent
    if (counts.failed === reportedFailures || Date.now() - reportedAt < 5000) return;
    reportedFailures = counts.failed;
    reportedAt = Date.now();
    upsertSearchAttributes([{ key: BatchFailedCountKey, value: counts.failed }]);
  };

  // Local item activities complete inside a workflow task. Time-throttled reports that followed those wake-ups
  // did not replay (a full bench run stopped on a nondeterminism error at a progress signal), so in local mode a
  // timer drives them instead: its wake-ups are in history.
  const afterItem = local ? () => undefined : reportFailures;
  if (local) {
    void (async () => {
      while (!finishing) {
        await sleep(2000);
        reportFailures();
      }
    })().catch(() => undefined); // cancelled with the workflow
  }

  const work = () => cursor < hi || retryQueue.length > 0;
  try {
    // Loops again if retryFailed queued items while the last ones were finishing.
    while (!canceled) {
      await condition(
        () => canceled || (!work() && inFlight === 0) || (draining && inFlight === 0) || (!paused && !draining && work() && inFlight < concurrency),
      );
      if (canceled || (!work() && inFlight === 0) || draining) break;
      if (workflowInfo().historyLength >= (options.eventsPerRun ?? Infinity) || workflowInfo().continueAsNewSuggested) {
        draining = true; // schedule nothing more in this run
        continue;
      }
      if (chunkSize > 1 && retryQueue.length === 0) {
        const count = Math.min(chunkSize, hi - cursor);
        if (inFlight > 0 && inFlight + count > concurrency) {
          await condition(() => canceled || inFlight === 0 || inFlight + count <= concurrency);
          continue;
        }
        const start = cursor;
        cursor += count;
        inFlight += count;
        void runChunk(start, count).finally(() => {
          inFlight -= count;
          afterItem();
        });
        continue;
      }
      const i = retryQueue.length > 0 ? retryQueue.shift()! : cursor++;
      inFlight++;
      void runItem(i).finally(() => {
        inFlight--;
        afterItem();
      });
    }
  } catch (err) {
    if (!isCancellation(err)) throw err; // Temporal cancelled the workflow while it waited
    cancel();
  }
  if (CancellationScope.current().consideredCancelled) cancel();
  await CancellationScope.nonCancellable(() => condition(() => inFlight === 0));
  if (draining && !canceled && work()) {
    await condition(allHandlersFinished);
    const next: CarriedRange = {
      kind: 'range',
      cursor,
      retryQueue: [...retryQueue],
      status: rle(status),
      attempts: rle(attempts),
      startedAt: rle(startedAt),
      finishedAt: rle(finishedAt),
      // Bounded so the payload stays far under 256 KB at any shard size; the item store keeps every error.
      errors: [...errors].slice(0, MAX_CARRIED_ERRORS).map(([i, e]) => [i, e.type, e.message.slice(0, 120)]),
      paused,
      concurrency,
    };
    return continueAsNew<typeof batchWorkflow>({ ...input, startedAtMs: started, carried: next });
  }
  finishing = true;
  if (canceled) {
    for (let i = lo; i < hi; i++) if (status[i - lo] === CODE.pending) setState(i, CODE.canceled);
    retryQueue.length = 0;
  }

  batchStatus = canceled ? 'canceled' : 'completed';
  updatedAt = new Date().toISOString();
  if (!input.parentWorkflowId) {
    upsertSearchAttributes([
      { key: BatchStatusKey, value: BatchStatusValue[batchStatus] },
      { key: BatchFailedCountKey, value: counts.failed },
    ]);
  }
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  if (CancellationScope.current().consideredCancelled) {
    // Cancelled through Temporal: it records the batch as Canceled; its queries still answer. (The cancel
    // signal instead completes the workflow normally, with status 'canceled' in its result.)
    throw new CancelledFailure('batch canceled');
  }
  const p = progress();
  const summary: BatchSummary = { id: input.batchId, model: p.model, version: input.version, status: p.status, total, counts: p.counts, createdAt, updatedAt };
  if (input.range) {
    summary.failures = [];
    for (let i = lo; i < hi; i++) {
      const e = errors.get(i);
      if (status[i - lo] !== CODE.failed || !e || summary.failures.length >= MAX_CARRIED_ERRORS) continue;
      summary.failures.push({ index: i, attempts: attempts[i - lo]!, type: e.type, message: e.message.slice(0, 120) });
    }
  }
  return summary;
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
