import {
  CancellationScope,
  CancelledFailure,
  ParentClosePolicy,
  ChildWorkflowCancellationType,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type {
  BatchStatus,
  BatchSummary,
  BatchWorkflowInput,
  CarriedShards,
  FailedItem,
  ItemCounts,
} from '../src/contracts/batch.js';
import { batchWorkflowTaskTimeout, type batchWorkflow } from './batch-workflow.js';
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

/** Failed items a sharded batch keeps for its failures query (the item store has every failure). */
const MAX_TRACKED_FAILURES = 1000;

const zero = (): ItemCounts => ({ pending: 0, running: 0, succeeded: 0, failed: 0, canceled: 0 });
const add = (into: ItemCounts, c: ItemCounts) => {
  for (const k of Object.keys(into) as (keyof ItemCounts)[]) into[k] += c[k];
};

/**
 * A batch larger than options.shardSize: its items run in child workflows (`batch-<id>/shard-<n>`, each a
 * batchWorkflow over its range), at most options.maxConcurrentShards at a time. Shards report live counts by
 * signal and their failures in their result; messages sent to the batch are forwarded to its running shards.
 * Before its own history grows long, the batch lets its running shards finish and continues as new.
 */
export async function runShards(input: BatchWorkflowInput): Promise<BatchSummary> {
  const { options, total } = input;
  const info = workflowInfo();
  const shardSize = options.shardSize;
  const shardCount = Math.ceil(total / shardSize);
  const carried = input.carried?.kind === 'shards' ? input.carried : undefined;
  const started = input.startedAtMs ?? info.startTime.getTime();
  const createdAt = new Date(started).toISOString();
  let updatedAt = createdAt;
  let nextShard = carried?.nextShard ?? 0;
  const finished: ItemCounts = carried ? { ...carried.counts } : zero(); // shards that have ended
  const failures: FailedItem[] = carried ? [...carried.failures] : [];
  let paused = carried?.paused ?? false;
  let concurrency = carried?.concurrency ?? options.concurrency;
  const running = new Map<number, ChildWorkflowHandle<typeof batchWorkflow>>();
  const live = new Map<number, ItemCounts>(); // latest counts each running shard reported
  let canceled = false;
  let draining = false;
  let finishing = false;
  let batchStatus: BatchStatus = 'running';

  const range = (k: number) => ({ start: k * shardSize, end: Math.min(total, (k + 1) * shardSize) });
  const shardOf = (index: number) => Math.floor(index / shardSize);
  const counts = (): ItemCounts => {
    const c = { ...finished };
    for (const [k, l] of live) {
      const size = range(k).end - range(k).start;
      add(c, l);
      c.pending += size - (l.pending + l.running + l.succeeded + l.failed + l.canceled);
    }
    for (let k = nextShard; k < shardCount; k++) c.pending += range(k).end - range(k).start;
    return c;
  };
  const progress = (): Progress =>
    toProgress(
      { batchId: input.batchId, model: input.model, status: batchStatus, paused, concurrency, total, counts: counts(), createdAt, updatedAt },
      started,
      Date.now(),
    );
  /**
   * What the batch itself knows of an item: exact for shards not yet started (pending) and for tracked failures;
   * `succeeded` for other items of ended shards; `running` for items of a running shard, whose own `item` query
   * (workflow `batch-<id>/shard-<n>`) has the details. attempts 0 means: not known at the batch level.
   */
  const view = (index: number): ItemState => {
    const f = failures.find((x) => x.index === index);
    if (f) return { index, status: 'failed', attempts: f.attempts, error: { type: f.type, message: f.message } };
    const k = shardOf(index);
    if (k >= nextShard) return { index, status: canceled ? 'canceled' : 'pending', attempts: 0 };
    if (running.has(k)) return { index, status: 'running', attempts: 0 };
    return { index, status: 'succeeded', attempts: 0 };
  };
  const page = (filter: (s: ItemState) => boolean, from = 0, limit = 100): ItemsPage => {
    const max = Math.min(Math.max(limit, 1), 1000);
    const items: ItemState[] = [];
    let i = Math.max(from, 0);
    for (; i < total && items.length < max; i++) {
      const v = view(i);
      if (filter(v)) items.push(v);
    }
    return i < total ? { items, nextCursor: i } : { items };
  };

  const forward = (send: (h: ChildWorkflowHandle<typeof batchWorkflow>) => Promise<void>) => {
    for (const h of running.values()) void send(h).catch(() => undefined); // a shard that just ended
  };
  const cancel = () => {
    if (canceled) return;
    canceled = true;
    forward((h) => h.signal(cancelSignal));
  };

  setHandler(progressQuery, progress);
  setHandler(itemQuery, ({ index }) => (Number.isInteger(index) && index >= 0 && index < total ? view(index) : null));
  setHandler(itemsQuery, (args = {}) => page((v) => args.status === undefined || v.status === args.status, args.cursor, args.limit));
  setHandler(failuresQuery, (args = {}) => {
    const from = Math.max(args.cursor ?? 0, 0);
    const max = Math.min(Math.max(args.limit ?? 100, 1), 1000);
    const sorted = [...failures].sort((a, b) => a.index - b.index).filter((f) => f.index >= from);
    const items = sorted.slice(0, max).map((f) => view(f.index));
    return sorted.length > max ? { items, nextCursor: sorted[max]!.index } : { items };
  });
  setHandler(shardProgressSignal, ({ start, counts: c }) => {
    const k = shardOf(start);
    if (running.has(k)) live.set(k, c);
    updatedAt = new Date().toISOString();
  });
  setHandler(cancelSignal, cancel);
  setHandler(pauseSignal, () => {
    paused = true;
    forward((h) => h.signal(pauseSignal));
  });
  setHandler(resumeSignal, () => {
    paused = false;
    forward((h) => h.signal(resumeSignal));
  });
  setHandler(setConcurrencySignal, (arg) => {
    if (!Number.isInteger(arg.concurrency) || arg.concurrency < 1 || arg.concurrency > MAX_CONCURRENCY) return;
    concurrency = arg.concurrency;
    forward((h) => h.signal(setConcurrencySignal, arg));
  });
  setHandler(
    retryFailedUpdate,
    () => {
      // Running shards re-run their own dead letters; ended shards' failures stay (their items are in the store).
      const retried = [...live.values()].reduce((n, c) => n + c.failed, 0);
      forward((h) => h.signal(retryFailedSignal));
      return { retried };
    },
    {
      validator: () => {
        if (canceled) throw new Error('the batch is canceled');
        if (finishing) throw new Error('the batch has finished');
      },
    },
  );

  const launch = async (k: number) => {
    const { start, end } = range(k);
    const handle = await startChild<typeof batchWorkflow>('batchWorkflow', {
      workflowId: `${info.workflowId}/shard-${k}`,
      args: [{ ...input, range: { start, end }, startedAtMs: started, parentWorkflowId: info.workflowId, carried: undefined, options: { ...options, concurrency } }],
      // The batch forwards cancellation itself, so each shard ends normally with its counts.
      cancellationType: ChildWorkflowCancellationType.ABANDON,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      workflowTaskTimeout: batchWorkflowTaskTimeout(options),
    });
    running.set(k, handle);
    live.set(k, { ...zero(), pending: end - start });
    if (paused) void handle.signal(pauseSignal).catch(() => undefined);
    void handle
      .result()
      .then((summary) => {
        add(finished, summary.counts);
        for (const f of summary.failures ?? []) if (failures.length < MAX_TRACKED_FAILURES) failures.push(f);
      })
      .catch(() => {
        // A shard that ended without a result (terminated): its unfinished items count as failed.
        const l = live.get(k) ?? { ...zero(), pending: end - start };
        add(finished, { ...l, failed: l.failed + l.pending + l.running, pending: 0, running: 0 });
      })
      .finally(() => {
        running.delete(k);
        live.delete(k);
        updatedAt = new Date().toISOString();
        upsertSearchAttributes([{ key: BatchFailedCountKey, value: finished.failed }]);
      });
  };

  try {
    for (;;) {
      await condition(
        () =>
          canceled ||
          (nextShard >= shardCount && running.size === 0) ||
          (draining && running.size === 0) ||
          (!paused && !draining && nextShard < shardCount && running.size < options.maxConcurrentShards),
      );
      if (canceled || draining || (nextShard >= shardCount && running.size === 0)) break;
      if (workflowInfo().historyLength >= options.eventsPerRun || workflowInfo().continueAsNewSuggested) {
        draining = true;
        continue;
      }
      await launch(nextShard++);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancel(); // Temporal cancelled the batch: cancel the shards and collect their counts
  }
  await CancellationScope.nonCancellable(() => condition(() => running.size === 0));

  if (draining && !canceled && nextShard < shardCount) {
    await condition(allHandlersFinished);
    const next: CarriedShards = { kind: 'shards', nextShard, counts: finished, failures, paused, concurrency };
    return continueAsNew<typeof batchWorkflow>({ ...input, startedAtMs: started, carried: next });
  }

  finishing = true;
  if (canceled) {
    for (let k = nextShard; k < shardCount; k++) finished.canceled += range(k).end - range(k).start;
    nextShard = shardCount;
  }
  batchStatus = canceled ? 'canceled' : 'completed';
  updatedAt = new Date().toISOString();
  upsertSearchAttributes([
    { key: BatchStatusKey, value: BatchStatusValue[batchStatus] },
    { key: BatchFailedCountKey, value: finished.failed },
  ]);
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('batch canceled');
  return { id: input.batchId, model: input.model, version: input.version, status: batchStatus, total, counts: { ...finished }, createdAt, updatedAt };
}
