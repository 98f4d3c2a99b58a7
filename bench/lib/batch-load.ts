// A crowd of batch submitters, as users would be: `clients` concurrent clients, each POSTing a JSON batch to
// /v1/batches as soon as its previous submission returned, until `batches` are submitted in all; then the batches'
// ends are followed through the batch listing (GET /v1/batches, a page of 100 every 2 s), not by reading each batch.
import type { BatchListPage, BatchStatus } from '../../src/contracts/batch.js';
import { percentile } from './system-run.js';

export interface BatchLoadOptions {
  apiUrl: string;
  model: string;
  /** Item inputs of every batch. */
  items: Record<string, unknown>[];
  batches: number;
  clients: number;
  /** Pause between two sweeps of the listing (default 2 s). */
  pollIntervalMs?: number;
  /** Gives up when no batch has ended for this long once all are submitted (default 5 min). */
  stallTimeoutMs?: number;
  /** Says how far the load is, about every 10 s. */
  onProgress?: (line: string) => void;
}

export interface BatchLoad {
  /** Wall clock (ms since epoch) when the first submission started. */
  startedAtMs: number;
  /** Wall clock when the last submission returned its 202. */
  submittedAtMs: number;
  /** Wall clock when a sweep of the listing first found every batch ended. */
  endSeenAtMs: number;
  ids: string[];
  /** Submissions answered 202, ms: median and p99. */
  submitP50Ms: number;
  submitP99Ms: number;
  /** Submissions refused or failed, by status (each was tried again after Retry-After or 1 s). */
  rejected: Record<string, number>;
  /** The batches' final statuses. */
  statuses: Partial<Record<BatchStatus, number>>;
  /** Sweeps of the listing, and sweeps that failed (tried again at the next one). */
  sweeps: number;
  failedSweeps: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Submits the batches and resolves once every one of them has ended. */
export async function runBatchLoad(options: BatchLoadOptions): Promise<BatchLoad> {
  const { apiUrl, model, items, batches, clients, pollIntervalMs = 2000, stallTimeoutMs = 300_000 } = options;
  const body = JSON.stringify({ model, items: items.map((inputs) => ({ inputs })) });
  const ids: string[] = [];
  const submitMs: number[] = [];
  const rejected: Record<string, number> = {};
  let claimed = 0;
  const startedAtMs = Date.now();

  const submitOne = async (): Promise<void> => {
    for (let failedSince = Date.now(); ;) {
      const t = performance.now();
      let retryAfterS = 1;
      try {
        const res = await fetch(`${apiUrl}/v1/batches`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        const answer = (await res.json()) as { id?: string };
        if (res.status === 202 && answer.id) {
          ids.push(answer.id);
          submitMs.push(performance.now() - t);
          return;
        }
        rejected[res.status] = (rejected[res.status] ?? 0) + 1;
        retryAfterS = Number(res.headers.get('retry-after')) || 1;
      } catch (err) {
        const key = `error: ${String((err as Error).cause ?? (err as Error).message)}`;
        rejected[key] = (rejected[key] ?? 0) + 1;
      }
      if (Date.now() - failedSince > stallTimeoutMs) {
        throw new Error(`a batch submission kept failing for ${stallTimeoutMs} ms: ${JSON.stringify(rejected)}`);
      }
      await sleep(retryAfterS * 1000);
    }
  };
  let submittedAtMs: number | undefined;
  let submitError: unknown;
  const client = async (): Promise<void> => {
    while (claimed < batches && submitError === undefined) {
      claimed++;
      await submitOne();
    }
  };
  void Promise.all(Array.from({ length: clients }, client)).then(
    () => (submittedAtMs = Date.now()),
    (err: unknown) => (submitError = err),
  );

  // Follow the ends while the submissions go on: a batch counts as ended once the listing shows it so.
  const ended = new Map<string, BatchStatus>();
  let sweeps = 0;
  let failedSweeps = 0;
  let lastEndAt = Date.now();
  let saidAt = Date.now();
  for (;;) {
    await sleep(pollIntervalMs);
    if (submitError !== undefined) throw submitError;
    sweeps++;
    const before = ended.size;
    try {
      for (let cursor: string | undefined = ''; cursor !== undefined;) {
        const res = await fetch(`${apiUrl}/v1/batches?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
        if (res.status !== 200) throw new Error(`GET /v1/batches answered ${res.status}`);
        const page = (await res.json()) as BatchListPage;
        for (const b of page.batches) if (b.status !== 'running') ended.set(b.id, b.status);
        cursor = page.nextCursor;
      }
    } catch {
      failedSweeps++;
    }
    if (ended.size > before) lastEndAt = Date.now();
    if (Date.now() - saidAt >= 10_000) {
      saidAt = Date.now();
      options.onProgress?.(`${ids.length}/${batches} batches submitted, ${ended.size} ended`);
    }
    if (submittedAtMs !== undefined && ids.every((id) => ended.has(id))) break;
    if (submittedAtMs !== undefined && Date.now() - lastEndAt > stallTimeoutMs) {
      throw new Error(`no batch ended for ${stallTimeoutMs} ms; ${ended.size}/${batches} ended`);
    }
  }
  const endSeenAtMs = Date.now();
  const statuses: BatchLoad['statuses'] = {};
  for (const id of ids) statuses[ended.get(id)!] = (statuses[ended.get(id)!] ?? 0) + 1;
  return {
    startedAtMs,
    submittedAtMs: submittedAtMs!,
    endSeenAtMs,
    ids,
    submitP50Ms: percentile(submitMs, 50),
    submitP99Ms: percentile(submitMs, 99),
    rejected,
    statuses,
    sweeps,
    failedSweeps,
  };
}
