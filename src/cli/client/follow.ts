import { setTimeout as sleep } from 'node:timers/promises';
import type { BatchResource } from '../../contracts/batch.js';
import type { ApiClient } from './api-client.js';
import { CliError, ExitCode } from './exit-code.js';
import type { ProgressDisplay } from './progress.js';

/** How often a followed batch is read: `GET /v1/batches/:id` gives counts, rate and ETA at once. */
export const POLL_MS = 1000;

/** Polls without a gap this many times while the API answers 503 or cannot be reached, before giving up. */
const TRANSIENT_TRIES = 30;

export const batchSubject = (id: string) => `batch '${id}'`;

/** Reads one batch. */
export function getBatch(api: ApiClient, id: string): Promise<BatchResource> {
  return api.json<BatchResource>('GET', `/v1/batches/${encodeURIComponent(id)}`, { subject: batchSubject(id) });
}

/**
 * Reads the batch about once a second, showing each state, until it has ended. Polling rather than the SSE stream:
 * a progress display needs counts, not each of a million item events. A 503 or a lost connection (an API
 * restarting) is polled through for a while; anything else ends the follow.
 */
export async function followBatch(api: ApiClient, id: string, progress: ProgressDisplay): Promise<BatchResource> {
  let transient = 0;
  try {
    for (;;) {
      let batch: BatchResource | undefined;
      try {
        batch = await getBatch(api, id);
        transient = 0;
      } catch (err) {
        const retryable = err instanceof CliError && (err.status === undefined || err.status === 503);
        if (!retryable || ++transient >= TRANSIENT_TRIES) throw err;
      }
      if (batch) {
        progress.update(batch);
        if (batch.status !== 'running') return batch;
      }
      await sleep(POLL_MS);
    }
  } finally {
    progress.stop();
  }
}

/** The exit code a batch's state stands for: 1 once it ended with a failed or canceled item, or ended otherwise. */
export function outcomeCode(batch: Pick<BatchResource, 'status' | 'counts'>): ExitCode {
  if (batch.status === 'running') return ExitCode.ok;
  return batch.status === 'completed' && batch.counts.failed === 0 && batch.counts.canceled === 0
    ? ExitCode.ok
    : ExitCode.itemsFailed;
}

/** `batch <id> completed: 12 succeeded, 0 failed, 0 canceled of 12`. */
export function summaryLine(b: Pick<BatchResource, 'id' | 'status' | 'total' | 'counts'>): string {
  const { succeeded, failed, canceled, pending, running } = b.counts;
  const open = b.status === 'running' ? `, ${running} running, ${pending} pending` : '';
  return `batch ${b.id} ${b.status}: ${succeeded} succeeded, ${failed} failed, ${canceled} canceled${open} of ${b.total}`;
}
