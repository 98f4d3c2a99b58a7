import { Router } from 'express';
import { z } from 'zod';
import type { BatchEnd } from '../../client/batch-client.js';
import { InvalidRequestError } from '../../errors.js';
import { itemOutcome, type BatchSummary } from '../../contracts/batch.js';
import type { StoredEvent } from '../../stores/item-store.js';
import type { AppDeps } from '../app.js';
import { tailBatchEvents } from '../event-tail.js';
import { parseOrThrow } from '../middleware/validate.js';
import { DEFAULT_STREAM_TUNING, StreamWriter, type StreamTuning } from '../stream-writer.js';
import { batchIdParam } from './batches.js';

export const ResultsQuery = z
  .object({
    follow: z.enum(['true', 'false']).default('false'),
    status: z.enum(['succeeded', 'failed']).optional(),
  })
  .strict();

export const EventsQuery = z.object({ lastEventId: z.string().max(32).optional() }).strict();

/** The id of the terminal SSE event: reconnecting after it gets 204 (EventSource then stops reconnecting). */
export const END_EVENT_ID = 'end';

/**
 * `GET /v1/batches/:id/results` (NDJSON, streamed) and `GET /v1/batches/:id/events` (Server-Sent Events), both
 * read from the item store's event log, so they resume exactly and survive an API restart.
 */
export function batchStreamRoutes(deps: AppDeps, tuning: StreamTuning = DEFAULT_STREAM_TUNING): Router {
  const { batches, log } = deps;
  const store = batches.store;
  const router = Router();

  router.get('/v1/batches/:id/results', async (req, res) => {
    const id = batchIdParam(req);
    const query = parseOrThrow(ResultsQuery, req.query, 'query');
    batches.requireBatch(id, req.tenant);
    const writer = new StreamWriter(req, res, tuning);
    res.status(200).type('application/x-ndjson').setHeader('Cache-Control', 'no-store');
    res.flushHeaders();
    if (query.follow === 'false') {
      // Every finished item once, in index order, as it stands now.
      for (let cursor: number | undefined = 0; cursor !== undefined && !writer.closed; ) {
        const page = store.listResults(id, { cursor, limit: 1000, ...(query.status ? { status: query.status } : {}) });
        if (!(await writer.write(page.results.map((r) => `${JSON.stringify(itemOutcome(r))}\n`).join('')))) return;
        cursor = page.nextCursor;
      }
      res.end();
      return;
    }
    // Follow: outcomes in the order they were recorded until the batch ends (a retried failure shows again).
    for await (const step of tailBatchEvents({ store, batches, batchId: id, afterSeq: 0, signal: writer.signal })) {
      if (step.kind !== 'events') continue;
      const lines = step.events.filter((e) => !query.status || e.status === query.status);
      if (!(await writer.write(lines.map((e) => `${JSON.stringify(itemOutcome(e))}\n`).join('')))) return;
    }
    res.end();
  });

  router.get('/v1/batches/:id/events', async (req, res) => {
    const id = batchIdParam(req);
    const query = parseOrThrow(EventsQuery, req.query, 'query');
    batches.requireBatch(id, req.tenant);
    const last = req.header('last-event-id') ?? query.lastEventId ?? '';
    if (last === END_EVENT_ID) {
      res.status(204).end(); // the client has seen the end: nothing more will come
      return;
    }
    if (last !== '' && !/^\d{1,15}$/.test(last)) {
      throw new InvalidRequestError(`Last-Event-ID '${last}' is not an event id of this stream`, [{ path: ['Last-Event-ID'], message: 'expected an event id' }]);
    }
    const writer = new StreamWriter(req, res, tuning);
    res.status(200).setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    let seq = last === '' ? 0 : Number(last);
    let changed = true;
    let lastProgress = 0;
    let lastWrite = Date.now();
    // Progress is fetched beside the tail, never in its way: a query can wait for a workflow task (up to ~4 s
    // with local item activities), and item events keep flowing meanwhile.
    let progress: Promise<BatchSummary> | undefined;
    let progressReady: BatchSummary | undefined;
    let progressError: unknown;
    const send = async (frame: string) => {
      lastWrite = Date.now();
      return writer.write(frame);
    };
    if (!(await send('retry: 2000\n\n'))) return;
    try {
      for await (const step of tailBatchEvents({ store, batches, batchId: id, afterSeq: seq, signal: writer.signal })) {
        if (step.kind === 'events') {
          seq = step.events[step.events.length - 1]!.seq;
          changed = true;
          if (!(await send(step.events.map(itemFrame).join('')))) return;
        } else if (step.kind === 'end') {
          await send(endFrame(step.end));
          break;
        }
        const now = Date.now();
        if (progressError) throw progressError;
        if (progressReady) {
          const { failures: _failures, ...counts } = progressReady;
          progressReady = undefined;
          // Progress carries the id of the last item event sent, so resuming after it neither skips nor repeats one.
          if (!(await send(frame('batch.progress', counts, seq > 0 ? String(seq) : undefined)))) return;
        } else if (changed && !progress && now - lastProgress >= tuning.progressEveryMs) {
          lastProgress = now;
          changed = false;
          progress = batches.summary(id);
          progress.then(
            (summary) => (progressReady = summary),
            (err: unknown) => (progressError = err),
          ).finally(() => (progress = undefined));
        } else if (now - lastWrite >= tuning.keepAliveMs) {
          if (!(await send(': keep-alive\n\n'))) return;
        }
      }
    } catch (err) {
      // Headers are sent: report the fault as an event the client can read, then close.
      log.warn({ err, batchId: id, requestId: req.requestId }, 'event stream failed');
      await send(frame('error', { code: 'unavailable', message: 'the event stream failed; reconnect with Last-Event-ID' }));
    }
    res.end();
  });

  return router;
}

function frame(event: string, data: unknown, id?: string): string {
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function itemFrame(e: StoredEvent): string {
  return frame(e.status === 'succeeded' ? 'item.succeeded' : 'item.failed', itemOutcome(e), String(e.seq));
}

function endFrame(end: BatchEnd): string {
  const { failures: _failures, ...summary } = end.summary;
  return frame(`batch.${end.status}`, summary, END_EVENT_ID);
}
