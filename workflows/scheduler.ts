// The sliding window both kinds of batch run: items (or chunks of items) in a batch or shard, and shards in a
// sharded batch. One place decides when the next unit starts, when a run drains for continue-as-new, and how a
// cancellation from Temporal ends the loop.
import { CancellationScope, condition, isCancellation, workflowInfo } from '@temporalio/workflow';

export interface Window {
  /** Units (items, or shards) allowed in flight at once; read on every decision, so it can change. */
  capacity(): number;
  /** Units in flight now. */
  inFlight(): number;
  /** Whether a unit is waiting to start. */
  hasWork(): boolean;
  /** How much of the capacity the next unit takes (a chunk takes its item count). */
  nextSize(): number;
  paused(): boolean;
  canceled(): boolean;
  /** Starts the next unit; it must count itself in inFlight() until it ends. */
  startNext(): Promise<void> | void;
  /** Cancels the window's running units: called once Temporal cancels the workflow. */
  cancel(): void;
  /** A run whose history holds this many events drains and continues as new. */
  eventsPerRun: number;
}

/** How the loop ended: every unit done (or canceled), or drained with work left for the next run. */
export type WindowEnd = 'finished' | 'continue-as-new';

/**
 * Starts units while the window has room and the batch is not paused, until no work is left and nothing runs.
 * Once the history is long it starts nothing more, lets what runs finish, and answers 'continue-as-new'. Waits
 * for every running unit before it returns, also after a cancellation.
 */
export async function runWindow(w: Window): Promise<WindowEnd> {
  let draining = false;
  const idle = () => w.inFlight() === 0;
  const fits = () => idle() || w.inFlight() + w.nextSize() <= w.capacity();
  try {
    for (;;) {
      await condition(
        () =>
          w.canceled() || (idle() && (draining || !w.hasWork())) || (!draining && !w.paused() && w.hasWork() && fits()),
      );
      if (w.canceled() || (idle() && (draining || !w.hasWork()))) break;
      const info = workflowInfo();
      if (info.historyLength >= w.eventsPerRun || info.continueAsNewSuggested) {
        draining = true; // start nothing more in this run
        continue;
      }
      await w.startNext();
    }
  } catch (err) {
    if (!isCancellation(err)) throw err; // Temporal cancelled the workflow while it waited
    w.cancel();
  }
  if (CancellationScope.current().consideredCancelled) w.cancel();
  await CancellationScope.nonCancellable(() => condition(idle));
  return draining && !w.canceled() && w.hasWork() ? 'continue-as-new' : 'finished';
}
