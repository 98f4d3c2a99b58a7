// The state of a range of items as a workflow keeps it: a few bytes per item, not an object, so a shard of
// thousands of items stays small in memory and in the payload it carries across continue-as-new.
import type { CarriedItems, FailedItem } from '../src/contracts/batch.js';
import { ItemStatus, itemCounts, type ItemCounts } from '../src/contracts/status.js';
import { rle, unrle } from './carried-state.js';
import type { ItemState, ItemsPage, RunningRange } from './messages.js';

/** Item states as one-byte codes (the index into this list). */
const STATUS_BY_CODE = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'canceled',
] as const satisfies readonly ItemStatus[];
type Code = number;
const CODE: Record<ItemStatus, Code> = { pending: 0, running: 1, succeeded: 2, failed: 3, canceled: 4 };

/** Item errors a run carries across continue-as-new or returns to its parent (about 150 bytes each, at most). */
export const MAX_CARRIED_ERRORS = 1000;
/** Error messages carried or returned are cut to this length; the item store keeps every message whole. */
const CARRIED_MESSAGE_LENGTH = 120;

export interface ItemError {
  type: string;
  message: string;
}

/**
 * Items [lo, hi) of a batch, addressed by their global index. Timings are whole seconds since the batch started,
 * plus one (0: not yet), so two Uint32s per item carry them.
 */
export class ItemTable {
  readonly counts: ItemCounts;
  /** When an item last changed state (ms since the epoch, the workflow's clock). */
  private updatedMs: number;
  private readonly status: Uint8Array;
  private readonly attempts: Uint16Array;
  private readonly startedAt: Uint32Array;
  private readonly finishedAt: Uint32Array;
  private readonly errors = new Map<number, ItemError>();

  constructor(
    readonly lo: number,
    readonly hi: number,
    private readonly batchStartedMs: number,
    carried?: CarriedItems,
  ) {
    const size = hi - lo;
    this.status = new Uint8Array(size);
    this.attempts = new Uint16Array(size);
    this.startedAt = new Uint32Array(size);
    this.finishedAt = new Uint32Array(size);
    this.counts = itemCounts(size);
    this.updatedMs = batchStartedMs;
    if (!carried) return;
    unrle(carried.status, this.status);
    unrle(carried.attempts, this.attempts);
    unrle(carried.startedAt, this.startedAt);
    unrle(carried.finishedAt, this.finishedAt);
    for (const [i, type, message] of carried.errors) this.errors.set(i, { type, message });
    this.counts.pending = 0;
    for (const code of this.status) this.counts[STATUS_BY_CODE[code]!]++;
  }

  /** When an item last changed state (ISO 8601). */
  get updatedAt(): string {
    return new Date(this.updatedMs).toISOString();
  }

  get size(): number {
    return this.hi - this.lo;
  }

  contains(i: number): boolean {
    return Number.isInteger(i) && i >= this.lo && i < this.hi;
  }

  statusOf(i: number): ItemStatus {
    return STATUS_BY_CODE[this.status[i - this.lo]!]!;
  }

  // The mutators take the workflow's time as `now` (ms): a caller that changes many items reads the clock once, as
  // Date.now() in a workflow is a call into the SDK (the time of the activation, the same for the whole of it).

  /** Marks items [start, start + count) running; an item keeps the time its first attempt started. */
  start(start: number, count = 1, now = Date.now()): void {
    const stamp = this.stamp(now);
    for (let i = start; i < start + count; i++) {
      this.set(i, 'running', now);
      if (!this.startedAt[i - this.lo]) this.startedAt[i - this.lo] = stamp;
    }
  }

  succeed(i: number, attempts: number, now = Date.now()): void {
    this.addAttempts(i, attempts);
    this.set(i, 'succeeded', now);
    this.finishedAt[i - this.lo] = this.stamp(now);
  }

  fail(i: number, attempts: number, error: ItemError, now = Date.now()): void {
    this.addAttempts(i, attempts);
    this.errors.set(i, { type: error.type, message: error.message }); // callers may pass richer objects
    this.set(i, 'failed', now);
    this.finishedAt[i - this.lo] = this.stamp(now);
  }

  cancel(i: number, now = Date.now()): void {
    this.set(i, 'canceled', now);
    this.finishedAt[i - this.lo] = this.stamp(now);
  }

  /** Counts the attempts of a chunk that ran an item which now retries on its own. */
  addAttempts(i: number, attempts: number): void {
    this.attempts[i - this.lo] = this.attempts[i - this.lo]! + attempts;
  }

  /** Marks every pending item canceled (the batch was canceled before they ran). */
  cancelPending(): void {
    const now = Date.now();
    for (let i = this.lo; i < this.hi; i++) if (this.statusOf(i) === 'pending') this.set(i, 'canceled', now);
  }

  /** Puts every failed item back to pending, error cleared; returns their indexes. */
  resetFailed(): number[] {
    const reset: number[] = [];
    const now = Date.now();
    for (let i = this.lo; i < this.hi; i++) {
      if (this.statusOf(i) !== 'failed') continue;
      this.errors.delete(i);
      this.set(i, 'pending', now);
      reset.push(i);
    }
    return reset;
  }

  view(i: number): ItemState {
    const k = i - this.lo;
    const error = this.errors.get(i);
    return {
      index: i,
      status: this.statusOf(i),
      attempts: this.attempts[k]!,
      ...(this.startedAt[k] ? { startedAt: this.iso(this.startedAt[k]) } : {}),
      ...(this.finishedAt[k] ? { finishedAt: this.iso(this.finishedAt[k]) } : {}),
      ...(error ? { error } : {}),
    };
  }

  /** A page of the items that pass `filter`, from index `from` (clamped to the range), at most 1000. */
  page(filter: (status: ItemStatus) => boolean, from = 0, limit = 100): ItemsPage {
    const max = Math.min(Math.max(limit, 1), 1000);
    const items: ItemState[] = [];
    let i = Math.max(from, this.lo);
    for (; i < this.hi && items.length < max; i++) if (filter(this.statusOf(i))) items.push(this.view(i));
    return i < this.hi ? { items, nextCursor: i } : { items };
  }

  /** The runs of consecutive running items, in index order. */
  runningRanges(): RunningRange[] {
    const ranges: RunningRange[] = [];
    const running = CODE.running;
    for (let k = 0; k < this.status.length; k++) {
      if (this.status[k] !== running) continue;
      const from = k;
      while (k < this.status.length && this.status[k] === running) k++;
      ranges.push({ from: this.lo + from, to: this.lo + k, running: k - from });
    }
    return ranges;
  }

  /** The failed items with their errors, for a parent to aggregate (capped; the store has every failure). */
  failures(): FailedItem[] {
    const out: FailedItem[] = [];
    for (let i = this.lo; i < this.hi && out.length < MAX_CARRIED_ERRORS; i++) {
      const e = this.errors.get(i);
      if (this.statusOf(i) !== 'failed' || !e) continue;
      out.push({ index: i, attempts: this.attempts[i - this.lo]!, type: e.type, message: carriedMessage(e.message) });
    }
    return out;
  }

  /** The per-item state to carry across continue-as-new, run-length encoded (runs of equal values are typical). */
  carry(): Pick<CarriedItems, 'status' | 'attempts' | 'startedAt' | 'finishedAt' | 'errors'> {
    return {
      status: rle(this.status),
      attempts: rle(this.attempts),
      startedAt: rle(this.startedAt),
      finishedAt: rle(this.finishedAt),
      // Bounded (about 140 KB at most), so the per-item arrays above are what MAX_SHARD_SIZE has to bound.
      errors: [...this.errors]
        .slice(0, MAX_CARRIED_ERRORS)
        .map(([i, e]): [number, string, string] => [i, e.type, carriedMessage(e.message)]),
    };
  }

  private set(i: number, status: ItemStatus, now: number): void {
    const k = i - this.lo;
    this.counts[STATUS_BY_CODE[this.status[k]!]!]--;
    this.counts[status]++;
    this.status[k] = CODE[status];
    this.updatedMs = now; // a number per change; the ISO string only when asked (updatedAt)
  }

  private stamp(now: number): number {
    return Math.floor((now - this.batchStartedMs) / 1000) + 1;
  }

  private iso(stamp: number): string {
    return new Date(this.batchStartedMs + (stamp - 1) * 1000).toISOString();
  }
}

const carriedMessage = (message: string) => message.slice(0, CARRIED_MESSAGE_LENGTH);
