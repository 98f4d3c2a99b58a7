import { Context, log } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type {
  ChunkItemFailure,
  ChunkOutcome,
  InferChunkInput,
  InferItemInput,
  ItemFailureDetail,
  ItemResult,
  RecordItemFailuresInput,
} from '../src/contracts/batch.js';
import { PermanentItemFailure } from '../src/contracts/item-failure-type.js';
import { ITEM_HEARTBEAT_INTERVAL_MS, ITEM_HEARTBEAT_TIMEOUT_MS } from '../src/contracts/liveness.js';
import type { InferenceRuntime } from '../src/runtime/inference.js';
import type { Metrics } from '../src/metrics.js';
import { toActivityFailure } from './permanent-failure.js';
import type { ItemStore, StoredItem, StoredResult } from '../src/stores/item-store.js';
import type { ItemOutcome } from '../src/runtime/dynamic-batcher.js';
import { StoreUnavailableError } from '../src/stores/store-unavailable.js';

export interface InferenceActivityDeps {
  /** The model runtime (tests may pass a fake model; Temporal itself is never faked). */
  runtime: Pick<InferenceRuntime, 'infer' | 'inferMany'>;
  store: ItemStore;
  metrics?: Metrics;
}

export function createInferenceActivities({ runtime, store, metrics }: InferenceActivityDeps) {
  /** Stores an item's success, or the failure that ends its attempts (idempotent: see ItemStore.putResult). */
  const record = async (
    batchId: string,
    index: number,
    attempts: number,
    startedAt: string,
    outcome: { result: ItemResult } | { failure: ApplicationFailure },
  ): Promise<void> => {
    const finishedAt = new Date().toISOString();
    const recorded = await store.putResult(
      batchId,
      'result' in outcome
        ? { index, status: 'succeeded', attempts, result: outcome.result, startedAt, finishedAt }
        : {
            index,
            status: 'failed',
            attempts,
            error: { type: outcome.failure.type ?? 'Error', message: outcome.failure.message },
            startedAt,
            finishedAt,
          },
    );
    if (recorded) metrics?.itemsFinished.inc({ state: 'result' in outcome ? 'succeeded' : 'failed' });
  };

  /** Counts the outcomes a putResults call wrote. */
  const count = (written: boolean[], state: 'succeeded' | 'failed'): void => {
    const n = written.filter(Boolean).length;
    if (n > 0) metrics?.itemsFinished.inc({ state }, n);
  };

  /**
   * Records the failure that ends an item's attempts; answers whether it did. A store that cannot write does not
   * replace the item's own failure with its error: the workflow records the failure later (recordItemFailures).
   */
  const recordFailure = async (
    batchId: string,
    index: number,
    attempt: number,
    startedAt: string,
    failure: ApplicationFailure,
  ): Promise<boolean> => {
    try {
      await record(batchId, index, attempt, startedAt, { failure });
      return true;
    } catch (err) {
      log.warn('could not record an item failure; the workflow records it later', {
        batchId,
        index,
        error: (err as Error)?.message ?? String(err),
      });
      return false;
    }
  };

  return {
    /**
     * Records final item failures that no item activity recorded (the store could not write then, or the attempt
     * timed out on a worker that died). The batch workflow calls it with its own unbounded retries, so a store
     * outage delays these records but never loses them; an item that has an outcome in the store is left as it is.
     */
    async recordItemFailures({ batchId, failures }: RecordItemFailuresInput): Promise<void> {
      const finishedAt = new Date().toISOString();
      for (const f of failures) {
        // An outcome already there wins: the activity's own record of this failure (whose acknowledgement was lost),
        // a success of an attempt that outlived its timeout, or this same record from an earlier try of this call.
        // (A failure of an earlier round, before retryFailed, also stays: the item is failed either way.)
        if (await store.getResult(batchId, f.index)) continue;
        const recorded = await store.putResult(batchId, {
          index: f.index,
          status: 'failed',
          attempts: f.attempts,
          error: { type: f.type, message: f.message },
          startedAt: f.startedAt ?? finishedAt,
          finishedAt,
        });
        if (recorded) metrics?.itemsFinished.inc({ state: 'failed' });
      }
    },

    /**
     * Infers one item: reads its inputs from the item store, runs the model, and records the result there
     * (idempotently: a retried or duplicated attempt never records a second success). Permanent faults (inputs
     * that do not fit the model, an unknown model or version, a model file that cannot load) fail at once as
     * non-retryable; anything else is retried. A failure that ends the item's attempts is recorded too.
     * Returns only the attempt number: results stay out of workflow history.
     */
    async inferItem(input: InferItemInput): Promise<{ attempt: number }> {
      const { attempt } = Context.current().info;
      const attempts = attempt + (input.attemptsBefore ?? 0); // as the workflow counts the item's attempts
      const startedMs = Date.now();
      const startedAt = new Date(startedMs).toISOString();
      const [item] = await riding(() => store.getItems(input.batchId, input.index, 1), startedMs);
      if (!item) {
        throw ApplicationFailure.create({
          type: PermanentItemFailure.ItemNotFound,
          message: `item ${input.index} of batch ${input.batchId} is not in the item store`,
          nonRetryable: true,
          details: [{ attempt }],
        });
      }
      let result: ItemResult;
      try {
        result = await whileHeartbeating(runtime.infer(input.model, input.version, item.inputs));
      } catch (err) {
        if (err instanceof CancelledFailure) throw err; // the workflow cancelled this item: report it as cancelled
        const detail: ItemFailureDetail = { attempt };
        const failure = toActivityFailure(err, [detail]);
        if (failure.nonRetryable || attempt >= input.maxAttempts)
          detail.recorded = await recordFailure(input.batchId, input.index, attempts, startedAt, failure);
        throw failure;
      }
      // Outside the try: a store that cannot record the success (after riding out a short outage) fails the
      // attempt, which is retried, and is never taken for the item's own failure.
      await riding(() => record(input.batchId, input.index, attempts, startedAt, { result }), startedMs);
      return { attempt };
    },

    /**
     * Infers a chunk of consecutive items together, keeping per-item semantics: the items are read once and run as
     * few model runs as maxBatchSize allows (InferenceRuntime.inferMany), each run's successes are stored together
     * as soon as the run is done (one transaction or statement: readers see them then), a failing item does not
     * fail its neighbours, and items already recorded by an earlier attempt (a retried chunk) are skipped. Heartbeats
     * carry how many items are done. Returns the items that failed, for the workflow to fail or retry one by one.
     */
    async inferChunk(input: InferChunkInput): Promise<ChunkOutcome> {
      const ctx = Context.current();
      const { attempt } = ctx.info;
      const startedMs = Date.now();
      const startedAt = new Date(startedMs).toISOString();
      const end = input.start + input.count;
      const failures: ChunkItemFailure[] = [];
      const earlier: { index: number; attempts: number }[] = [];
      let done = 0;
      /**
       * Outcomes this attempt did not write because the item had one already (another attempt of the chunk, still
       * running after this one was given up, recorded it first): a success there is what the workflow must count.
       */
      const settleUnwritten = async (indexes: number[]): Promise<void> => {
        for (const index of indexes) {
          const stored = await riding(() => store.getResult(input.batchId, index), startedMs);
          if (stored?.status === 'succeeded') earlier.push({ index, attempts: stored.attempts });
        }
      };
      const storeRun = async (todo: StoredItem[], positions: number[], outcomes: ItemOutcome[]): Promise<void> => {
        // A cancelled attempt (the workflow's cancel, a worker shutting down, an evicted local chunk that runs again)
        // stores nothing more: the chunk's next run records these items.
        if (ctx.cancellationSignal.aborted) return;
        const finishedAt = new Date().toISOString();
        const succeeded: Omit<StoredResult, 'id'>[] = [];
        const last: { failure: ChunkItemFailure; row: Omit<StoredResult, 'id'> }[] = [];
        positions.forEach((position, k) => {
          const index = todo[position]!.index;
          const outcome = outcomes[k]!;
          if (!(outcome instanceof Error)) {
            succeeded.push({ index, status: 'succeeded', attempts: attempt, result: outcome, startedAt, finishedAt });
            return;
          }
          const failure = toActivityFailure(outcome, [{ attempt }]);
          const f: ChunkItemFailure = {
            index,
            type: failure.type ?? 'Error',
            message: failure.message,
            nonRetryable: failure.nonRetryable === true,
            recorded: false,
          };
          failures.push(f);
          // The failure that ends the item is recorded here; one to be retried is the next attempt's to record.
          if (f.nonRetryable || attempt >= input.maxAttempts) {
            const error = { type: f.type, message: f.message };
            last.push({
              failure: f,
              row: { index, status: 'failed', attempts: attempt, error, startedAt, finishedAt },
            });
          }
        });
        // A store that cannot record the successes (after riding out a short outage) fails the whole attempt (the
        // chunk is retried; its recorded items are skipped then): never the items' own failure.
        succeeded.sort((a, b) => a.index - b.index); // a text run holds its items by length
        const written = await riding(() => store.putResults(input.batchId, succeeded), startedMs);
        count(written, 'succeeded');
        await settleUnwritten(succeeded.filter((_, k) => !written[k]).map((r) => r.index));
        if (last.length > 0) {
          last.sort((a, b) => a.row.index - b.row.index);
          try {
            const recordedNow = await store.putResults(
              input.batchId,
              last.map((l) => l.row),
            );
            count(recordedNow, 'failed');
            // Not written: the same failure was there already, or a success, which then stands.
            await settleUnwritten(last.filter((_, k) => !recordedNow[k]).map((l) => l.row.index));
            for (const l of last) l.failure.recorded = true;
          } catch (err) {
            log.warn('could not record item failures; the workflow records them later', {
              batchId: input.batchId,
              indexes: last.map((l) => l.row.index),
              error: (err as Error)?.message ?? String(err),
            });
          }
        }
        done += positions.length;
      };
      /**
       * Reads the chunk's items FIRST_CHUNK_SLICE first, then CHUNK_SLICE at a time, and hands each slice to the
       * model as soon as it is read, so the first runs are stored while later slices are still being read. A retried
       * chunk skips what an earlier attempt recorded: successes, and failures that ended their items (reported again,
       * as recorded, so the workflow fails them without a second record).
       */
      const runSlices = async (): Promise<void> => {
        const handed: Promise<void>[] = [];
        let failed: { error: unknown } | undefined;
        try {
          for (
            let from = input.start, slice = FIRST_CHUNK_SLICE;
            from < end && !ctx.cancellationSignal.aborted;
            from += slice, slice = CHUNK_SLICE
          ) {
            const count = Math.min(slice, end - from);
            const items = await riding(() => store.getItems(input.batchId, from, count), startedMs);
            if (items.length !== count) {
              throw ApplicationFailure.create({
                type: PermanentItemFailure.ItemNotFound,
                message: `${count - items.length} items of ${input.batchId} [${from}, ${from + count}) are not in the item store`,
                nonRetryable: true,
              });
            }
            const recorded = new Map(
              (
                await riding(
                  () => store.listResults(input.batchId, { cursor: from, end: from + count, limit: count }),
                  startedMs,
                )
              ).results.map((r) => [r.index, r]),
            );
            const todo: StoredItem[] = [];
            for (const item of items) {
              const before = recorded.get(item.index);
              if (before?.status === 'succeeded') {
                if (before.attempts !== attempt) earlier.push({ index: item.index, attempts: before.attempts });
              } else if (before?.error) {
                failures.push({
                  index: item.index,
                  ...before.error,
                  nonRetryable: true,
                  recorded: true,
                  attempts: before.attempts,
                });
              } else todo.push(item);
            }
            done += items.length - todo.length;
            handed.push(
              runtime
                .inferMany(
                  input.model,
                  input.version,
                  todo.map((item) => item.inputs),
                  (positions, outcomes) => storeRun(todo, positions, outcomes),
                )
                .catch((error: unknown) => {
                  failed ??= { error };
                }),
            );
            // The slice's first runs are on the inference threads: their outcomes are stored before the next read.
            await new Promise((resolve) => setImmediate(resolve));
          }
        } finally {
          await Promise.all(handed); // nothing of this attempt runs on after it ends
        }
        if (failed) throw failed.error;
      };
      await whileHeartbeating(runSlices(), () => ({ done, of: input.count }));
      if (ctx.cancellationSignal.aborted) await ctx.cancelled; // rejects with the cancellation
      if (done !== input.count) {
        throw new Error(`inferChunk: ${input.count - done} of ${input.count} items got no outcome from the runtime`);
      }
      // An item with a success in the store (`earlier`) is no failure, whatever this attempt saw.
      const succeeded = new Set(earlier.map((e) => e.index));
      const failed = withinPayloadBudget(
        failures.filter((f) => !succeeded.has(f.index)).sort((a, b) => a.index - b.index),
      );
      return earlier.length > 0 ? { attempt, failures: failed, earlier } : { attempt, failures: failed };
    },
  };
}

/**
 * Items a chunk reads and hands to the model at a time: its first results are stored after one slice is read, not
 * the whole chunk (up to 5,000 items), and a slice is still many runs of a small model.
 */
const CHUNK_SLICE = 1000;
/**
 * The chunk's first slice is smaller: its first results wait for that slice's read, validation and tokenizing (a text
 * model tokenizes a whole slice before its first run). 64 items are one run of the tabular models here (digits takes
 * up to 128) or four of the embedding model's runs of 16: enough to start on.
 */
const FIRST_CHUNK_SLICE = 64;

/**
 * Characters of failure messages a chunk returns, all failures together. The outcome travels in workflow history,
 * whose payloads Temporal refuses above 2 MB: a chunk of thousands of items that all fail with a long message (a model
 * that cannot load, say) must stay far under that. The messages the activity records in the item store stay whole.
 */
const CHUNK_FAILURE_MESSAGES_BUDGET = 256 * 1024;
/** A message is never cut shorter than this. */
const CHUNK_FAILURE_MESSAGE_MIN = 120;

/** Cuts the messages of a chunk's failures to an equal share of CHUNK_FAILURE_MESSAGES_BUDGET when they exceed it. */
function withinPayloadBudget(failures: ChunkItemFailure[]): ChunkItemFailure[] {
  const total = failures.reduce((n, f) => n + f.message.length, 0);
  if (total <= CHUNK_FAILURE_MESSAGES_BUDGET) return failures;
  const share = Math.max(Math.floor(CHUNK_FAILURE_MESSAGES_BUDGET / failures.length), CHUNK_FAILURE_MESSAGE_MIN);
  return failures.map((f) => (f.message.length > share ? { ...f, message: `${f.message.slice(0, share - 1)}…` } : f));
}

/** Delays between tries of a store call that met an outage: doubling from the first, capped at the last. */
const STORE_RETRY_FIRST_MS = 250;
const STORE_RETRY_MAX_MS = 2000;
/** A store call gives up this long before its activity's start-to-close deadline, so the attempt fails cleanly. */
const STORE_RETRY_MARGIN_MS = 1000;

/**
 * Runs a store call of an attempt that started at `attemptStartedMs`, trying again while the store is unavailable (StoreUnavailableError: a full disk, a PostgreSQL
 * restarting) until the activity's own deadline draws near: an outage of the item store delays items instead of
 * using up their attempts, which are for faults of the item itself. Heartbeats meanwhile (remote activities), and
 * stops between tries when the activity is cancelled.
 */
async function riding<T>(call: () => Promise<T>, attemptStartedMs: number): Promise<T> {
  const ctx = Context.current();
  const deadline = ctx.info.startToCloseTimeoutMs
    ? attemptStartedMs + ctx.info.startToCloseTimeoutMs - STORE_RETRY_MARGIN_MS
    : Number.POSITIVE_INFINITY;
  // A store call may hang (a PostgreSQL connecting) or wait long between tries: the attempt stays alive meanwhile.
  const beat = ctx.info.isLocal ? undefined : setInterval(() => ctx.heartbeat(), ITEM_HEARTBEAT_INTERVAL_MS);
  try {
    for (let wait = STORE_RETRY_FIRST_MS; ; wait = Math.min(wait * 2, STORE_RETRY_MAX_MS)) {
      try {
        return await call();
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || Date.now() + wait > deadline) throw err;
        await ctx.sleep(wait); // rejects with CancelledFailure when the activity is cancelled
      }
    }
  } finally {
    clearInterval(beat);
  }
}

/**
 * Awaits `work` while heartbeating (ITEM_HEARTBEAT_INTERVAL_MS apart, and at least four beats per heartbeat
 * timeout), so a long item stays alive, a dead worker's item is retried soon, and a cancellation from the workflow
 * or a worker shutting down reaches it: then this rejects with CancelledFailure at once. A local activity learns
 * of cancellation from its worker directly. The first beat comes after one interval, not at the start: an attempt
 * shorter than that (most items, most chunks) sends none, and each beat is a write on the server. A worker that
 * dies before it is caught by the heartbeat timeout either way, counted from the attempt's start.
 */
async function whileHeartbeating<T>(work: Promise<T>, progress?: () => unknown): Promise<T> {
  const ctx = Context.current();
  if (ctx.info.isLocal) return Promise.race([work, ctx.cancelled]); // local activities cannot heartbeat
  const beat = () => ctx.heartbeat(progress?.());
  const timeoutMs = ctx.info.heartbeatTimeoutMs ?? ITEM_HEARTBEAT_TIMEOUT_MS;
  const beating = setInterval(beat, Math.max(Math.min(ITEM_HEARTBEAT_INTERVAL_MS, Math.floor(timeoutMs / 4)), 50));
  try {
    return await Promise.race([work, ctx.cancelled]);
  } finally {
    clearInterval(beating);
  }
}
