/**
 * The callers of ItemStore.nextWrite() waiting on one store: each resolves when woken, at its timeout, or when its
 * signal aborts, whichever comes first. Each backend decides what wakes them (SQLite: its write-ahead log changed;
 * PostgreSQL: a notification).
 */
export class WriteWaiters {
  private readonly waiters = new Set<() => void>();

  /** `onIdle`: called each time the last waiter leaves (a backend stops listening until the next wait). */
  constructor(private readonly onIdle?: () => void) {}

  /** Waits; `canBeWoken` false (nothing will wake it) waits out the timeout alone. */
  wait(timeoutMs: number, signal: AbortSignal | undefined, canBeWoken: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(done);
        if (this.waiters.size === 0) this.onIdle?.();
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      if (signal?.aborted) done();
      else if (canBeWoken) this.waiters.add(done);
    });
  }

  wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
