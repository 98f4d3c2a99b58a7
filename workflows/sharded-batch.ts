// A batch larger than options.shardSize: its items run in shardWorkflow children, at most
// options.maxConcurrentShards at a time. The batch aggregates their counts and failures and forwards its
// messages to the shards that run.
import {
  ChildWorkflowCancellationType,
  allHandlersFinished,
  condition,
  isCancellation,
  ParentClosePolicy,
  setHandler,
  startChild,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { BatchWorkflowInput, CarriedShards, FailedItem } from '../src/contracts/batch.js';
import { itemCounts, type BatchStatus, type ItemCounts } from '../src/contracts/status.js';
import { MAX_CARRIED_ERRORS } from './item-table.js';
import {
  cancelSignal,
  failuresQuery,
  itemQuery,
  itemsQuery,
  isConcurrency,
  pauseSignal,
  progressQuery,
  resumeSignal,
  retryFailedSignal,
  retryFailedUpdate,
  retryFailedValidator,
  runningQuery,
  setConcurrencySignal,
  shardProgressSignal,
  toProgress,
  type ItemState,
  type ItemsPage,
  type Progress,
} from './messages.js';
import { runWindow, type WindowEnd } from './scheduler.js';
import { shardWorkflow, shardWorkflowId } from './shard-workflow.js';
import { ITEM_WORKFLOW_TASK_TIMEOUT_MS } from './workflow-task-timeout.js';

const add = (into: ItemCounts, c: ItemCounts) => {
  for (const k of Object.keys(into) as (keyof ItemCounts)[]) into[k] += c[k];
};

export interface ShardedBatch {
  progress(): Progress;
  /** Counts of every item, the shards that ended and those still pending included. */
  counts(): ItemCounts;
  readonly canceled: boolean;
  /** Set once the batch has ended: no message changes it any more. */
  readonly finishing: boolean;
}

export interface ShardedBatchEnd {
  end: WindowEnd;
  batch: ShardedBatch;
  carried?: CarriedShards;
}

/**
 * Runs the shards. `onShardEnded` is called as each shard ends, so the batch can keep its search attributes
 * current. Returns when every shard has ended, or when the batch must continue as new (running shards finish
 * first; the next run starts where this one stopped).
 */
export async function runShardedBatch(
  input: BatchWorkflowInput,
  startedAtMs: number,
  onShardEnded: (batch: ShardedBatch) => void,
): Promise<ShardedBatchEnd> {
  const { options, total } = input;
  const info = workflowInfo();
  const shardSize = options.shardSize;
  const shardCount = Math.ceil(total / shardSize);
  const carried = input.carried?.kind === 'shards' ? input.carried : undefined;
  const createdAt = new Date(startedAtMs).toISOString();
  let updatedAt = createdAt;
  let nextShard = carried?.nextShard ?? 0;
  const finished: ItemCounts = carried ? { ...carried.counts } : itemCounts(0); // items of the shards that have ended
  const failures: FailedItem[] = carried ? [...carried.failures] : [];
  const failureAt = new Map(failures.map((f) => [f.index, f])); // the same failures by index, for the queries
  // Ended shards whose items did not all run (canceled, or terminated): their items that the store has no outcome
  // for are shown as such, not as succeeded.
  const unfinished = new Map<number, 'canceled' | 'failed'>(carried?.unfinished ?? []);
  let paused = carried?.paused ?? false;
  let concurrency = carried?.concurrency ?? options.concurrency;
  const running = new Map<number, ChildWorkflowHandle<typeof shardWorkflow>>();
  const live = new Map<number, ItemCounts>(); // the latest counts each running shard reported
  let canceled = false;
  let finishing = false;
  let status: BatchStatus = 'running';

  const range = (k: number) => ({ start: k * shardSize, end: Math.min(total, (k + 1) * shardSize) });
  const sizeOf = (k: number) => range(k).end - range(k).start;
  const shardOf = (index: number) => Math.floor(index / shardSize);
  const counts = (): ItemCounts => {
    const c = { ...finished };
    for (const [k, l] of live) {
      add(c, l);
      c.pending += sizeOf(k) - Object.values(l).reduce((n, x) => n + x, 0);
    }
    for (let k = nextShard; k < shardCount; k++) c.pending += sizeOf(k);
    return c;
  };
  const batch: ShardedBatch = {
    counts,
    progress: () =>
      toProgress(
        {
          batchId: input.batchId,
          model: input.model,
          status,
          paused,
          concurrency,
          total,
          counts: counts(),
          createdAt,
          updatedAt,
        },
        startedAtMs,
        Date.now(),
      ),
    get canceled() {
      return canceled;
    },
    get finishing() {
      return finishing;
    },
  };

  /**
   * What the batch itself knows of an item: exact for shards not yet started (pending) and for tracked failures;
   * for other items of ended shards, `succeeded`, or `canceled`/`failed` if the shard ended before all its items
   * ran (the client overrides it with the item's stored outcome); `running` for items of a running shard, whose
   * own `item` query has the details. attempts 0 means: not known at the batch level.
   */
  const view = (index: number): ItemState => {
    const f = failureAt.get(index);
    if (f) return { index, status: 'failed', attempts: f.attempts, error: { type: f.type, message: f.message } };
    const k = shardOf(index);
    if (k >= nextShard) return { index, status: canceled ? 'canceled' : 'pending', attempts: 0 };
    if (running.has(k)) return { index, status: 'running', attempts: 0 };
    return { index, status: unfinished.get(k) ?? 'succeeded', attempts: 0 };
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

  const forward = (send: (h: ChildWorkflowHandle<typeof shardWorkflow>) => Promise<void>) => {
    for (const h of running.values()) void send(h).catch(() => undefined); // a shard that just ended
  };
  const cancel = () => {
    if (canceled) return;
    canceled = true;
    forward((h) => h.signal(cancelSignal));
  };

  setHandler(progressQuery, batch.progress);
  setHandler(itemQuery, ({ index }) => (Number.isInteger(index) && index >= 0 && index < total ? view(index) : null));
  setHandler(itemsQuery, (args = {}) =>
    page((v) => args.status === undefined || v.status === args.status, args.cursor, args.limit),
  );
  setHandler(runningQuery, () =>
    [...running.keys()]
      .sort((a, b) => a - b)
      .map((k) => ({
        from: range(k).start,
        to: range(k).end,
        running: live.get(k)?.running ?? 0,
        shard: shardWorkflowId(info.workflowId, k),
      })),
  );
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
    if (!isConcurrency(arg.concurrency)) return;
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
    { validator: retryFailedValidator(batch) },
  );

  const launch = async (k: number) => {
    const { start, end } = range(k);
    const startedWith = concurrency;
    let handle: ChildWorkflowHandle<typeof shardWorkflow>;
    try {
      handle = await startChild(shardWorkflow, {
        workflowId: shardWorkflowId(info.workflowId, k),
        args: [
          {
            batchId: input.batchId,
            model: input.model,
            version: input.version,
            options: { ...options, concurrency },
            range: { start, end },
            startedAtMs,
            parentWorkflowId: info.workflowId,
          },
        ],
        // The batch forwards cancellation itself, so each shard ends normally with its counts.
        cancellationType: ChildWorkflowCancellationType.ABANDON,
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        workflowTaskTimeout: ITEM_WORKFLOW_TASK_TIMEOUT_MS,
      });
    } catch (err) {
      if (isCancellation(err)) {
        // Temporal cancelled the batch while the shard was starting: none of its items ran.
        finished.canceled += end - start;
        unfinished.set(k, 'canceled');
      }
      throw err;
    }
    running.set(k, handle);
    live.set(k, itemCounts(end - start));
    // Messages that arrived while the shard was starting were forwarded only to the shards running then.
    if (canceled) void handle.signal(cancelSignal).catch(() => undefined);
    else if (paused) void handle.signal(pauseSignal).catch(() => undefined);
    if (concurrency !== startedWith) void handle.signal(setConcurrencySignal, { concurrency }).catch(() => undefined);
    void handle
      .result()
      .then((summary) => {
        add(finished, summary.counts);
        if (summary.counts.canceled > 0) unfinished.set(k, 'canceled');
        for (const f of summary.failures ?? []) {
          if (failures.length >= MAX_CARRIED_ERRORS) break;
          failures.push(f);
          failureAt.set(f.index, f);
        }
      })
      .catch(() => {
        // A shard that ended without a result (terminated): its unfinished items count as failed.
        const l = live.get(k) ?? itemCounts(end - start);
        add(finished, { ...l, failed: l.failed + l.pending + l.running, pending: 0, running: 0 });
        unfinished.set(k, 'failed');
      })
      .finally(() => {
        running.delete(k);
        live.delete(k);
        updatedAt = new Date().toISOString();
        onShardEnded(batch);
      });
  };

  const end = await runWindow({
    capacity: () => options.maxConcurrentShards,
    inFlight: () => running.size,
    hasWork: () => nextShard < shardCount,
    nextSize: () => 1,
    paused: () => paused,
    canceled: () => canceled,
    cancel,
    eventsPerRun: options.eventsPerRun,
    startNext: () => launch(nextShard++),
  });

  if (end === 'continue-as-new') {
    await condition(allHandlersFinished); // a handler still running may change what is carried over
    return {
      end,
      batch,
      carried: {
        kind: 'shards',
        nextShard,
        counts: finished,
        failures,
        unfinished: [...unfinished],
        paused,
        concurrency,
      },
    };
  }
  finishing = true;
  if (canceled) {
    for (let k = nextShard; k < shardCount; k++) {
      finished.canceled += sizeOf(k);
      unfinished.set(k, 'canceled');
    }
    nextShard = shardCount;
  }
  status = canceled ? 'canceled' : 'completed';
  updatedAt = new Date().toISOString();
  return { end, batch };
}
