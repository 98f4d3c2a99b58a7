// Queries, signals and updates of batchWorkflow (and of each shardWorkflow, for its own range). Every one is usable
// from the Temporal CLI with JSON arguments (`temporal workflow query|signal|update execute --name <name> --input
// '<json>'`); docs/temporal.md lists the commands.
import {
  CancellationScope,
  CancelledFailure,
  allHandlersFinished,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
} from '@temporalio/workflow';
import type { BatchStatus, BatchSummary, ItemCounts, ItemStatus } from '../src/contracts/batch.js';
import { MAX_CONCURRENCY } from '../src/contracts/limits.js';

export interface Progress {
  batchId: string;
  model: string;
  status: BatchStatus;
  /** Set while the batch is paused: no new item starts. */
  paused: boolean;
  /** Items allowed in flight at once (options.concurrency until setConcurrency changes it). */
  concurrency: number;
  total: number;
  counts: ItemCounts;
  percent: number;
  /** Items finished per second since the batch started. */
  itemsPerSecond: number;
  /** Estimated time of completion at the current rate (absent until an item has finished). */
  eta?: string;
  createdAt: string;
  updatedAt: string;
}

/** An item's state as the workflow knows it; its client id and result are in the item store. */
export interface ItemState {
  index: number;
  status: ItemStatus;
  attempts: number;
  /** When its first attempt was scheduled and when it finished (ISO 8601). */
  startedAt?: string;
  finishedAt?: string;
  error?: { type: string; message: string };
}

export interface ItemsQueryArgs {
  /** Only items in this state. */
  status?: ItemStatus;
  /** Index to start from (the previous page's nextCursor). */
  cursor?: number;
  /** Items per page (default 100, at most 1000). */
  limit?: number;
}

export interface ItemsPage {
  items: ItemState[];
  nextCursor?: number;
}

/**
 * Items [from, to) hold `running` running items: all of them (`running` = to - from) where the workflow runs the
 * items itself; from a sharded batch's parent, a running shard's whole range, the count it last reported (at most
 * every 2 s, as items finish) and the shard's workflow id, whose own `running` query has the exact ranges.
 */
export interface RunningRange {
  from: number;
  to: number;
  running: number;
  shard?: string;
}

/** Builds the progress answer: percent, rate since the batch started, and ETA at that rate while running. */
export function toProgress(
  p: Omit<Progress, 'percent' | 'itemsPerSecond' | 'eta'>,
  startedMs: number,
  nowMs: number,
): Progress {
  const c = p.counts;
  const done = c.succeeded + c.failed + c.canceled;
  const elapsed = (nowMs - startedMs) / 1000;
  const rate = elapsed > 0 ? done / elapsed : 0;
  const left = p.total - done;
  return {
    ...p,
    counts: { ...c },
    percent: p.total === 0 ? 100 : Math.round((done / p.total) * 10_000) / 100,
    itemsPerSecond: Math.round(rate * 100) / 100,
    ...(rate > 0 && p.status === 'running' ? { eta: new Date(nowMs + (left / rate) * 1000).toISOString() } : {}),
  };
}

/** What a batch or shard returns when it ends: its last progress, without the rate. */
export function toSummary(p: Progress, version: number | undefined): BatchSummary {
  const { batchId: id, model, status, total, counts, createdAt, updatedAt } = p;
  return { id, model, version, status, total, counts, createdAt, updatedAt };
}

/**
 * The last step of a run that ends: lets running message handlers (an update in flight) finish, then, if Temporal
 * cancelled the workflow, ends it as Canceled (its queries still answer). The cancel signal instead ends the run
 * normally, with status 'canceled' in its result.
 */
export async function finishHandlers(what: string): Promise<void> {
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  if (CancellationScope.current().consideredCancelled) throw new CancelledFailure(`${what} canceled`);
}

/** Counts by state, percent, rate and ETA: `temporal workflow query --name progress`. */
export const progressQuery = defineQuery<Progress>('progress');
/** One item by index: `--name item --input '{"index": 17}'`. */
export const itemQuery = defineQuery<ItemState | null, [{ index: number }]>('item');
/** A page of items: `--name items --input '{"status":"failed","cursor":0,"limit":50}'`. */
export const itemsQuery = defineQuery<ItemsPage, [ItemsQueryArgs?]>('items');
/** Where items are running, in index order, without a scan of the batch: `--name running`. */
export const runningQuery = defineQuery<RunningRange[]>('running');
/** The items that exhausted their attempts (the dead-letter set): `--name failures --input '{"limit":50}'`. */
export const failuresQuery = defineQuery<ItemsPage, [{ cursor?: number; limit?: number }?]>('failures');

/** Stops scheduling, cancels running items, marks the rest canceled; finished results stay. */
export const cancelSignal = defineSignal('cancel');
/** No new item starts until resume; running items finish. */
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Changes how many items may run at once: `--input '{"concurrency": 4}'`. */
export const setConcurrencySignal = defineSignal<[{ concurrency: number }]>('setConcurrency');

/** Re-runs every item in the dead-letter set with fresh attempts; returns how many were queued. */
export const retryFailedUpdate = defineUpdate<{ retried: number }>('retryFailed');

/** Whether setConcurrency's value is one the batch takes (any other is ignored: a signal cannot be refused). */
export const isConcurrency = (n: unknown): n is number =>
  Number.isInteger(n) && (n as number) >= 1 && (n as number) <= MAX_CONCURRENCY;

/** The retryFailed update's validator: refuses a batch that is canceled or has finished. */
export function retryFailedValidator(state: { readonly canceled: boolean; readonly finishing: boolean }) {
  return () => {
    if (state.canceled) throw new Error('the batch is canceled');
    if (state.finishing) throw new Error('the batch has finished');
  };
}

/** A shard reports its counts to its parent batch (at most every 2 s) so the batch's progress stays live. */
export const shardProgressSignal = defineSignal<[{ start: number; counts: ItemCounts }]>('shardProgress');
/** The parent of a sharded batch forwards retryFailed to its running shards with this signal. */
export const retryFailedSignal = defineSignal('retryFailedInShard');
