import type { BatchClient, BatchEnd } from '../client/batch-client.js';
import type { ItemStore, StoredEvent } from '../stores/item-store.js';

/** What a tail of a batch's event log yields. */
export type TailStep =
  /** New item outcomes, oldest first. */
  | { kind: 'events'; events: StoredEvent[] }
  /** Nothing new right now (a chance for keep-alives and progress). */
  | { kind: 'idle' }
  /** The batch has ended and every outcome before its end has been yielded. */
  | { kind: 'end'; end: BatchEnd };

export interface TailOptions {
  store: ItemStore;
  batches: Pick<BatchClient, 'outcome'>;
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
  /** How often Temporal is asked whether the batch has ended while idle (default 1000 ms). */
  endCheckMs?: number;
}

/** Events read from the store per step. */
const PAGE = 500;

/**
 * Follows a batch's event log in the item store from `afterSeq` until the batch ends: the one source of
 * `GET /events` (SSE) and `GET /results?follow=true`. Outcomes are recorded before the activity that ran them
 * completes, and the batch ends only after its activities, so once Temporal reports the end a last read of the
 * log finds everything: nothing is lost and nothing repeats.
 */
export async function* tailBatchEvents(options: TailOptions): AsyncGenerator<TailStep> {
  const { store, batches, batchId, signal } = options;
  const pollMs = options.pollMs ?? 50;
  const endCheckMs = options.endCheckMs ?? 1000;
  let afterSeq = options.afterSeq;
  let lastEndCheck = 0;
  while (!signal.aborted) {
    const events = store.listEvents(batchId, afterSeq, PAGE);
    if (events.length > 0) {
      afterSeq = events[events.length - 1]!.seq;
      yield { kind: 'events', events };
      continue;
    }
    if (Date.now() - lastEndCheck >= endCheckMs) {
      lastEndCheck = Date.now();
      const end = await batches.outcome(batchId);
      if (end) {
        for (
          let rest = store.listEvents(batchId, afterSeq, PAGE);
          rest.length > 0;
          rest = store.listEvents(batchId, afterSeq, PAGE)
        ) {
          afterSeq = rest[rest.length - 1]!.seq;
          yield { kind: 'events', events: rest };
        }
        yield { kind: 'end', end };
        return;
      }
    }
    yield { kind: 'idle' };
    await store.nextWrite(pollMs, signal);
  }
}
