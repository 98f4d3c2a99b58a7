// Runs a range of a batch's items as activities, at most `concurrency` items in flight, each retried with
// exponential backoff on its own, and answers the batch's messages for that range. A batch small enough to need
// no shards runs its items here itself; a shard runs its range here.
import {
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { BatchStatus, CarriedItems, ChunkOutcome, ShardWorkflowInput } from '../src/contracts/batch.js';
import { PERMANENT_ITEM_FAILURES } from '../src/contracts/item-failure-type.js';
import { ITEM_HEARTBEAT_TIMEOUT_MS } from '../src/contracts/liveness.js';
import { describeFailure } from './activity-failure.js';
import { ItemTable } from './item-table.js';
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
  toProgress,
  type Progress,
} from './messages.js';
import { runWindow, type WindowEnd } from './scheduler.js';

/** A range of a batch's items: what a shard runs, and what a batch without shards runs over all its items. */
export interface ItemWindowInput extends Omit<ShardWorkflowInput, 'parentWorkflowId'> {
  /** Set when the window is a shard's: its parent batch forwards messages to it. */
  parentWorkflowId?: string;
  /**
   * Called as items finish (remote activities; throttling is the caller's), or `counted` (local ones) each time
   * half the range, at most LOCAL_REPORT_EVERY_ITEMS items, has finished since the last call: then the caller must
   * not throttle by time, which does not replay inside the workflow tasks that local activities hold open.
   */
  report(window: ItemWindow, counted: boolean): void;
  /**
   * Resolves once the reports sent so far have been delivered: the window waits for it before it ends or continues
   * as new (a shard's reports are signals to its parent).
   */
  reportsDelivered?(): Promise<void>;
}

export interface ItemWindow {
  readonly table: ItemTable;
  progress(): Progress;
  /** Re-queues the dead-letter set with fresh attempts; answers how many items were queued. */
  retryFailed(): { retried: number };
  /** Whether the batch was canceled (by signal or by Temporal). */
  readonly canceled: boolean;
  /** Set once the run has ended: no message changes it any more. */
  readonly finishing: boolean;
}

export interface ItemWindowEnd {
  end: WindowEnd;
  window: ItemWindow;
  /** What the next run needs, when end is 'continue-as-new'. */
  carried?: CarriedItems;
}

/** How often a run with local item activities reported progress before LOCAL_REPORTS_BY_COUNT_PATCH. */
const LOCAL_REPORT_INTERVAL_MS = 2000;

/**
 * A run with local item activities reports progress by the count of items finished, not on a timer. A workflow task
 * stays open while local activities run (seconds), and the timer fired inside nearly every one; when such a task
 * ended the run (continue-as-new, or the batch's end), Temporal refused its completion for the event that came
 * meanwhile (UnhandledCommand), and the worker replayed the run's whole history and ran again the local activities
 * whose markers that completion held. Runs recorded before it keep the timer on replay.
 */
const LOCAL_REPORTS_BY_COUNT_PATCH = 'local-reports-by-count';
/** At most this many items finish between two reports of a run with local item activities. */
const LOCAL_REPORT_EVERY_ITEMS = 1000;

/**
 * A chunk's items count the attempts its activity recorded them with (a retried chunk's items, 2 or more; the item
 * store says the same). Runs recorded before it counted 1 for every chunk item, and keep doing so on replay.
 */
const CHUNK_ATTEMPTS_PATCH = 'chunk-attempts';

/**
 * A window of remote activities starts at most RAMP_UNITS units (items, or chunks) in its first run's first workflow
 * task, and the rest once one of them has ended or RAMP_MS have passed, whichever comes first. Scheduling a whole
 * window of activities in one task held back the first item's start, and so the batch's first result (BENCHMARKS.md,
 * time to first result); a slow model's window still fills after RAMP_MS. Local activities have no ramp: their
 * workflow task stays open while they run, so the timer would start only at the task's first heartbeat, seconds
 * later. Runs recorded before it filled the window at once.
 */
const FIRST_TASK_RAMP_PATCH = 'first-task-ramp';
const RAMP_UNITS = 8;
const RAMP_MS = 100;

export async function runItemWindow(input: ItemWindowInput): Promise<ItemWindowEnd> {
  const { options, batchId } = input;
  const { start: lo, end: hi } = input.range;
  const carried = input.carried;
  const table = new ItemTable(lo, hi, input.startedAtMs, carried);
  const createdAt = new Date(input.startedAtMs).toISOString();
  let cursor = carried?.cursor ?? lo; // the next item never run
  const retryQueue: number[] = carried ? [...carried.retryQueue] : []; // items re-queued by retryFailed
  let paused = carried?.paused ?? false;
  let concurrency = carried?.concurrency ?? options.concurrency;
  let inFlight = 0;
  let canceled = false;
  let finishing = false;
  let status: BatchStatus = 'running';

  const retryPolicy = {
    maximumAttempts: options.maxAttempts,
    initialInterval: options.initialIntervalMs,
    backoffCoefficient: options.backoffCoefficient,
    maximumInterval: options.maximumIntervalMs,
    nonRetryableErrorTypes: [...PERMANENT_ITEM_FAILURES],
  };
  // Local activities run inside the workflow task on the worker that holds it: one marker event per item and no
  // trip through the server's matching, at the price of heartbeats (a long item is bounded by itemTimeoutMs
  // only) and of keeping a range's items on one worker.
  const local = options.itemActivities === 'local';
  const activityOptions: ActivityOptions & LocalActivityOptions = local
    ? { startToCloseTimeout: options.itemTimeoutMs, retry: retryPolicy }
    : {
        startToCloseTimeout: options.itemTimeoutMs,
        heartbeatTimeout: Math.min(options.itemTimeoutMs, ITEM_HEARTBEAT_TIMEOUT_MS),
        retry: retryPolicy,
      };
  const { inferItem, inferChunk } = local
    ? proxyLocalActivities<Activities>(activityOptions)
    : proxyActivities<Activities>(activityOptions);
  const dead = deadLetterRecorder(batchId, table);
  const chunkSize = options.itemsPerActivity;
  // The first run's ramp (FIRST_TASK_RAMP_PATCH): a capacity of RAMP_UNITS units until a unit ends or the timer
  // fires; a window that holds no more than that from the start has none.
  let ramping = !local && !carried && options.concurrency > RAMP_UNITS * chunkSize && patched(FIRST_TASK_RAMP_PATCH);
  const rampTimer = new CancellationScope();
  if (ramping) {
    void rampTimer
      .run(() => sleep(RAMP_MS))
      .then(
        () => (ramping = false),
        () => undefined, // cancelled: a unit ended first, or the workflow was cancelled
      );
  }
  const endRamp = () => {
    if (!ramping) return;
    ramping = false;
    rampTimer.cancel();
  };

  // Every item activity runs in this scope, so a cancel signal cancels them all; Temporal's own cancellation
  // reaches them through the root scope it hangs from.
  const items = new CancellationScope();
  const cancel = () => {
    if (canceled || finishing) return;
    canceled = true;
    items.cancel();
  };
  const window: ItemWindow = {
    table,
    progress: () =>
      toProgress(
        {
          batchId,
          model: input.model,
          status,
          paused,
          concurrency,
          total: table.size,
          counts: table.counts,
          createdAt,
          updatedAt: table.updatedAt,
        },
        input.startedAtMs,
        Date.now(),
      ),
    retryFailed: () => {
      const reset = table.resetFailed();
      retryQueue.push(...reset);
      return { retried: reset.length };
    },
    get canceled() {
      return canceled;
    },
    get finishing() {
      return finishing;
    },
  };

  setHandler(progressQuery, window.progress);
  setHandler(itemQuery, ({ index }) => (table.contains(index) ? table.view(index) : null));
  setHandler(itemsQuery, (args = {}) =>
    table.page((s) => args.status === undefined || s === args.status, args.cursor, args.limit),
  );
  setHandler(failuresQuery, (args = {}) => table.page((s) => s === 'failed', args.cursor, args.limit));
  setHandler(runningQuery, () => table.runningRanges());
  setHandler(cancelSignal, cancel);
  setHandler(pauseSignal, () => {
    paused = true;
  });
  setHandler(resumeSignal, () => {
    paused = false;
  });
  setHandler(setConcurrencySignal, ({ concurrency: n }) => {
    if (isConcurrency(n)) concurrency = n;
  });
  if (input.parentWorkflowId) {
    // A sharded batch forwards retryFailed to its running shards as a signal (an update cannot be sent from a
    // workflow); from anyone else it is the update, whose validator can refuse.
    setHandler(retryFailedSignal, () => {
      if (!canceled && !finishing) window.retryFailed();
    });
  }
  setHandler(retryFailedUpdate, window.retryFailed, { validator: retryFailedValidator(window) });

  /**
   * Only a local activity is cancelled without the batch asking: its worker dropped the workflow from its cache
   * (an eviction) while the item ran or waited out a retry. Its items run again rather than count as canceled.
   */
  const evicted = (err: unknown) => isCancellation(err) && !items.consideredCancelled;

  /**
   * Runs item i's inferItem activity and records its outcome. `afterChunk`: the attempts of a chunk item that failed
   * retryably in them (its chunk's attempt): it is retried on its own with the attempts left, continuing the batch's
   * backoff: after a chunk's first attempt, the next comes after initialInterval, then initialInterval x
   * coefficient, and so on.
   */
  const attemptItem = async (i: number, afterChunk = 0): Promise<void> => {
    const maxAttempts = options.maxAttempts - afterChunk;
    try {
      if (afterChunk) await items.run(() => sleep(options.initialIntervalMs));
      const retry = afterChunk
        ? {
            ...retryPolicy,
            maximumAttempts: maxAttempts,
            initialInterval: Math.min(
              options.initialIntervalMs * options.backoffCoefficient,
              options.maximumIntervalMs,
            ),
          }
        : retryPolicy;
      const summary = `item ${i} of batch ${batchId}${afterChunk ? ' (retry after its chunk)' : ''}`;
      const { attempt } = await items.run(() =>
        inferItem.executeWithOptions({ ...activityOptions, retry, summary }, [
          {
            batchId,
            index: i,
            model: input.model,
            version: input.version,
            maxAttempts,
            ...(afterChunk ? { attemptsBefore: afterChunk } : {}),
          },
        ]),
      );
      table.succeed(i, attempt);
    } catch (err) {
      if (evicted(err)) return attemptItem(i, afterChunk);
      if (isCancellation(err)) return table.cancel(i);
      const failure = describeFailure(err, maxAttempts);
      table.fail(i, failure.attempts, failure);
      if (!failure.recorded) dead.add(i);
    }
  };

  /** Items [start, start + count) in one inferChunk activity; its failed items fail or retry one by one. */
  const runChunk = async (start: number, count: number): Promise<void> => {
    let out: ChunkOutcome;
    try {
      const summary = `items ${start}-${start + count - 1} of batch ${batchId}`;
      out = await items.run(() =>
        inferChunk.executeWithOptions({ ...activityOptions, summary }, [
          { batchId, start, count, model: input.model, version: input.version, maxAttempts: options.maxAttempts },
        ]),
      );
    } catch (err) {
      if (evicted(err)) return runChunk(start, count);
      const failure = isCancellation(err) ? undefined : describeFailure(err, options.maxAttempts);
      const now = Date.now();
      for (let i = start; i < start + count; i++) {
        if (!failure) table.cancel(i, now);
        else {
          table.fail(i, failure.attempts, failure, now);
          dead.add(i); // the chunk's failure is no item's record
        }
      }
      return;
    }
    const failures = new Map(out.failures.map((f) => [f.index, f]));
    const retries: Promise<void>[] = [];
    // Attempts as the chunk's activity recorded them (before this, every item counted one: so do older histories).
    const counted = patched(CHUNK_ATTEMPTS_PATCH);
    const attempt = counted ? out.attempt : 1;
    const earlier = new Map(counted ? out.earlier?.map((e) => [e.index, e.attempts]) : []);
    const now = Date.now();
    for (let i = start; i < start + count; i++) {
      const f = failures.get(i);
      if (!f) table.succeed(i, earlier.get(i) ?? attempt, now);
      else if (f.nonRetryable || attempt >= options.maxAttempts) {
        table.fail(i, (counted && f.attempts) || attempt, f, now);
        if (!f.recorded) dead.add(i);
      } else {
        table.addAttempts(i, attempt);
        retries.push(attemptItem(i, attempt));
      }
    }
    await Promise.all(retries);
  };

  // Local runs report by counts of finished items (LOCAL_REPORTS_BY_COUNT_PATCH): they replay as they happened.
  const reportEvery =
    local && patched(LOCAL_REPORTS_BY_COUNT_PATCH)
      ? Math.min(LOCAL_REPORT_EVERY_ITEMS, Math.max(1, Math.ceil((hi - lo) / 2)))
      : undefined;
  let finishedSinceReport = 0;
  const afterUnit = (count: number) => {
    endRamp();
    if (!local) input.report(window, false);
    else if (reportEvery !== undefined && (finishedSinceReport += count) >= reportEvery) {
      finishedSinceReport = 0;
      input.report(window, true);
    }
  };
  const nextChunk = () => (retryQueue.length === 0 && chunkSize > 1 ? Math.min(chunkSize, hi - cursor) : 1);
  if (local && reportEvery === undefined) {
    // Before LOCAL_REPORTS_BY_COUNT_PATCH: a timer's wake-ups are in history, so a timer drove the reports.
    void (async () => {
      while (!finishing) {
        await sleep(LOCAL_REPORT_INTERVAL_MS);
        input.report(window, false);
      }
    })().catch(() => undefined); // cancelled with the workflow
  }

  const end = await runWindow({
    capacity: () => (ramping ? Math.min(concurrency, RAMP_UNITS * chunkSize) : concurrency),
    inFlight: () => inFlight,
    hasWork: () => cursor < hi || retryQueue.length > 0,
    nextSize: nextChunk,
    paused: () => paused,
    canceled: () => canceled,
    cancel,
    eventsPerRun: options.eventsPerRun,
    startNext: () => {
      // Re-queued items go first, one by one; new items go in chunks when the batch asks for them.
      const chunked = chunkSize > 1 && retryQueue.length === 0;
      const count = nextChunk();
      let start: number;
      if (retryQueue.length > 0) start = retryQueue.shift()!;
      else {
        start = cursor;
        cursor += count;
      }
      inFlight += count;
      table.start(start, count);
      void (chunked ? runChunk(start, count) : attemptItem(start)).finally(() => {
        inFlight -= count;
        afterUnit(count);
      });
    },
  });

  // A finished run takes no more messages while its last failures are recorded (retryFailed is refused, a cancel
  // ignored); a draining run may still take them: re-queued items are carried, and a cancel ends it here.
  if (end === 'finished') finishing = true;
  await dead.recorded();
  await input.reportsDelivered?.();
  if (end === 'continue-as-new' && !canceled) {
    await condition(allHandlersFinished); // a handler still running may change what is carried over
    return { end, window, carried: { kind: 'items', cursor, retryQueue, paused, concurrency, ...table.carry() } };
  }
  finishing = true;
  if (canceled) {
    table.cancelPending();
    retryQueue.length = 0;
  }
  status = canceled ? 'canceled' : 'completed';
  return { end: 'finished', window };
}

/** Final failures per recordItemFailures call: a few hundred bytes each, far under Temporal's payload limits. */
const DEAD_LETTERS_PER_CALL = 200;

/**
 * Records the final failures that no item activity recorded (its store write failed, or its last attempt timed
 * out on a worker that died), in calls of up to DEAD_LETTERS_PER_CALL, one call at a time, each retried for as
 * long as the store is away and never cancelled: a canceled batch keeps its failures. `recorded()` resolves once
 * every failure added so far is in the store; a run waits for it before it ends or continues as new.
 */
function deadLetterRecorder(batchId: string, table: ItemTable) {
  const { recordItemFailures } = proxyActivities<Activities>({
    startToCloseTimeout: '1m',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' }, // no attempt limit
  });
  // Histories from before this step replay without it.
  const enabled = patched('record-dead-letters');
  const queue: number[] = [];
  let running = false;
  const drain = async () => {
    running = true;
    try {
      while (queue.length > 0) {
        const failures = queue.splice(0, DEAD_LETTERS_PER_CALL).flatMap((i) => {
          const { status, attempts, error, startedAt } = table.view(i);
          if (status !== 'failed' || !error) return []; // re-queued by retryFailed since: its next outcome counts
          return [{ index: i, attempts, ...error, ...(startedAt ? { startedAt } : {}) }];
        });
        if (failures.length > 0)
          await CancellationScope.nonCancellable(() => recordItemFailures({ batchId, failures }));
      }
    } finally {
      running = false;
    }
  };
  return {
    add(i: number) {
      if (!enabled) return;
      queue.push(i);
      if (!running) void drain();
    },
    // Not cancellable either: a batch that Temporal cancelled still waits for its failures to be recorded.
    recorded: () => CancellationScope.nonCancellable(() => condition(() => !running && queue.length === 0)),
  };
}
