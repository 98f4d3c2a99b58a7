import type { BatchEnd } from '../contracts/batch.js';
import type { ItemStore, StoredItemEvent } from '../stores/item-store.js';

/** What a tail of a batch's event log yields. */
export type TailStep =
  /** New item outcomes, oldest first. */
  | { kind: 'events'; events: StoredItemEvent[] }
  /** Nothing new right now (a chance for keep-alives and progress). */
  | { kind: 'idle' }
  /** The batch has ended and every outcome before its end has been yielded. */
  | { kind: 'end'; end: BatchEnd };

export interface TailOptions {
  store: ItemStore;
  /**
   * Records the end of a batch whose workflow closed without recording it (BatchClient.outcome): asked only after
   * the log has been quiet for endFallbackMs, so a running batch costs Temporal nothing.
   */
  recordMissingEnd?(batchId: string): Promise<BatchEnd | undefined>;
  batchId: string;
  /** Resume after this event (0: from the start). */
  afterSeq: number;
  /** Stops the tail (the client went away). */
  signal: AbortSignal;
  /**
   * How often the log is read while idle at the latest (default 50 ms); a write to the store wakes the tail sooner,
   * so first results reach clients at once.
   */
  pollMs?: number;
  /** How long the log stays quiet before recordMissingEnd is asked (default 30 s). */
  endFallbackMs?: number;
}

/** Events read from the store per step. */
const PAGE = 500;

/**
 * Follows a batch's event log in the item store from `afterSeq` until its end entry: the one source of
 * `GET /events` (SSE) and `GET /results?follow=true`. The end is the log's last entry (the batch workflow's last
 * step writes it after every outcome was recorded), so reading up to it yields everything, nothing twice.
 */
export async function* tailBatchEvents(options: TailOptions): AsyncGenerator<TailStep> {
  const { store, batchId, signal } = options;
  const pollMs = options.pollMs ?? 50;
  const endFallbackMs = options.endFallbackMs ?? 30_000;
  let afterSeq = options.afterSeq;
  let quietSince = Date.now();
  while (!signal.aborted) {
    const events = await store.listEvents(batchId, afterSeq, PAGE);
    const end = events.findIndex((e) => e.kind === 'end');
    const items = (end === -1 ? events : events.slice(0, end)) as StoredItemEvent[];
    if (items.length > 0) {
      afterSeq = items[items.length - 1]!.seq;
      quietSince = Date.now();
      yield { kind: 'events', events: items };
    }
    const last = events[end];
    if (last?.kind === 'end') {
      yield { kind: 'end', end: { status: last.status, summary: last.summary } };
      return;
    }
    if (items.length > 0) continue;
    if (options.recordMissingEnd && Date.now() - quietSince >= endFallbackMs) {
      quietSince = Date.now();
      if (await options.recordMissingEnd(batchId)) continue; // recorded now: the next read finds it
    }
    yield { kind: 'idle' };
    await store.nextWrite(pollMs, signal);
  }
}
