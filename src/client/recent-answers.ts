// Answers of a running batch's workflow, shared by every reader in this process for a moment. A query goes to the
// batch worker, which may be saturated (it runs at the lowest priority on `batchline dev`'s host): under full load
// an answer takes seconds. Dashboards, SSE streams and CLIs of the same batch then share one query at a time
// instead of each waiting on its own, and a reader gets the last answer at once while a newer one is on its way.
import { LRUCache } from 'lru-cache';

/** An answer this young is served as it is. */
export const FRESH_MS = 250;
/** An older answer, up to this age, is served while a new query runs; older still, the reader waits for the new one. */
export const STALE_MS = 5000;

interface Timed<V> {
  value: V;
  at: number;
}

export class RecentAnswers<V extends object> {
  private readonly cache: LRUCache<string, Timed<V>>;
  private readonly staleMs: number;

  constructor(load: (batchId: string) => Promise<V>, ages: { freshMs?: number; staleMs?: number } = {}) {
    this.staleMs = ages.staleMs ?? STALE_MS;
    this.cache = new LRUCache<string, Timed<V>>({
      max: 10_000,
      ttl: ages.freshMs ?? FRESH_MS,
      allowStale: true,
      fetchMethod: async (batchId) => ({ value: await load(batchId), at: Date.now() }),
    });
  }

  /** The batch's answer: a fresh one, a stale one while a query runs, or the shared query's. Its errors are thrown. */
  async get(batchId: string): Promise<V> {
    const held = this.cache.peek(batchId, { allowStale: true });
    const tooOld = held !== undefined && Date.now() - held.at > this.staleMs;
    const answer = await this.cache.fetch(batchId, tooOld ? { forceRefresh: true, allowStale: false } : {});
    return answer!.value;
  }

  /** Forgets the batch's answer (after this process changed the batch, so its next reader sees the change). */
  forget(batchId: string): void {
    this.cache.delete(batchId);
  }
}
