import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { itemOutcome, ItemOutcome, type BatchEnd, type BatchSummary } from '../../contracts/batch.js';
import { END_EVENT_ID, EventsHeaders, EventsQuery, ResultsQuery } from '../../contracts/batch-queries.js';
import { endEventType, itemEventType } from '../../contracts/event-type.js';
import { ErrorCode } from '../../contracts/http-error.js';
import type { StoredItemEvent } from '../../stores/item-store.js';
import { tailBatchEvents } from '../event-tail.js';
import { BatchPath } from '../path-params.js';
import { defineRoute, type ApiRoute, type RouteContext } from '../route.js';
import { StreamWriter } from '../stream-writer.js';

const SSE_DESCRIPTION = `Server-Sent Events from the batch's event log, resumable exactly:

| event | id | data |
|---|---|---|
| \`item.succeeded\`, \`item.failed\` | the event's sequence number | \`ItemOutcome\` |
| \`batch.progress\` (at most once a second) | the last item event's id | \`BatchProgress\` |
| \`batch.completed\`, \`batch.canceled\`, \`batch.failed\` (last) | \`end\` | \`BatchProgress\` |
| \`error\` (the stream failed; reconnect) | none | \`{ code, message }\` |

The stream opens with \`retry: 2000\` and sends \`: keep-alive\` comments when quiet. To resume, send the last id
seen as the \`Last-Event-ID\` header (or \`lastEventId\`): events after it follow; after \`end\` the answer is 204.

With \`items=false\` the stream has no item events: a \`batch.progress\` (no id) each second while the counts or the
rate change, and the end event, whatever the batch's size; a reconnect starts from the batch as it is then.`;

/**
 * `GET /v1/batches/:id/results` (NDJSON, streamed) and `GET /v1/batches/:id/events` (Server-Sent Events), both
 * read from the item store's event log, so they resume exactly and survive an API restart.
 */
export const batchStreamRoutes: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v1/batches/:id/results',
    operationId: 'streamResults',
    summary: 'Every finished item as NDJSON',
    description:
      'One `ItemOutcome` per line in index order; with `follow=true`, outcomes as they are recorded until the batch ends.',
    tag: 'Batch streams',
    request: { params: BatchPath, query: ResultsQuery },
    responses: {
      200: {
        description: 'One ItemOutcome per line (this schema describes a line).',
        content: { 'application/x-ndjson': ItemOutcome },
      },
    },
    errors: [404, 503],
    handler: async ({ params: { id }, query }, { req, res, deps }) => {
      const { batches } = deps;
      const store = batches.store;
      await batches.requireBatch(id, req.tenant);
      const writer = new StreamWriter(req, res, deps.streamTuning);
      const begin = () => {
        res.status(200).type('application/x-ndjson').setHeader('Cache-Control', 'no-store');
        res.flushHeaders();
      };
      const line = (o: ItemOutcome) => `${JSON.stringify(itemOutcome(o))}\n`;
      if (query.follow === 'false') {
        // Every finished item once, in index order, as it stands now. The first page is read before the status is
        // sent, so a store that cannot answer is a 503; one that fails later can only cut the stream short.
        const pageFrom = (cursor: number) =>
          store.listResults(id, { cursor, limit: 1000, ...(query.status ? { status: query.status } : {}) });
        let page = await pageFrom(0);
        begin();
        for (;;) {
          if (!(await writer.write(page.results.map(line).join('')))) return;
          if (page.nextCursor === undefined || writer.closed) break;
          page = await pageFrom(page.nextCursor);
        }
        res.end();
        return;
      }
      begin();
      // Follow: outcomes in the order they were recorded until the batch ends (a retried failure shows again).
      const recordMissingEnd = (batchId: string) => batches.outcome(batchId);
      for await (const step of tailBatchEvents({
        store,
        recordMissingEnd,
        batchId: id,
        afterSeq: 0,
        signal: writer.signal,
      })) {
        if (step.kind !== 'events') continue;
        const lines = step.events.filter((e) => !query.status || e.status === query.status);
        if (!(await writer.write(lines.map(line).join('')))) return;
      }
      res.end();
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/batches/:id/events',
    operationId: 'streamEvents',
    summary: 'Item, progress and end events (Server-Sent Events)',
    description: SSE_DESCRIPTION,
    tag: 'Batch streams',
    request: { params: BatchPath, query: EventsQuery, headers: EventsHeaders },
    responses: {
      200: { description: 'The event stream.', content: { 'text/event-stream': z.string() } },
      204: { description: 'The client has already seen the end (`Last-Event-ID: end`).' },
    },
    errors: [404, 503],
    handler: async ({ params: { id }, query, headers }, context) => {
      await context.deps.batches.requireBatch(id, context.req.tenant);
      const last = headers['Last-Event-ID'] ?? query.lastEventId ?? '';
      if (last === END_EVENT_ID) {
        context.res.status(204).end(); // the client has seen the end: nothing more will come
        return;
      }
      if (query.items === 'false') await streamProgress(id, context);
      else await streamEvents(id, last === '' ? 0 : Number(last), context);
    },
  }),
];

/** Starts an SSE response. */
function openStream({ req, res, deps }: RouteContext): StreamWriter {
  const writer = new StreamWriter(req, res, deps.streamTuning);
  res.status(200).setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  return writer;
}

/**
 * The SSE stream of `items=false`: the batch's summary each progressEveryMs while it changes, then its end. It
 * never reads the event log, so its cost is the same for ten items and ten million.
 */
async function streamProgress(id: string, context: RouteContext): Promise<void> {
  const { req, res, deps } = context;
  const { batches, log, streamTuning: tuning } = deps;
  const writer = openStream(context);
  if (!(await writer.write('retry: 2000\n\n'))) return;
  let sent = '';
  let lastWrite = Date.now();
  try {
    while (!writer.closed) {
      const { failures: _failures, ...summary } = await batches.summary(id); // the recorded end once there is one
      const end = summary.status === 'running' ? undefined : await batches.outcome(id); // undefined till recorded
      if (end) {
        await writer.write(endFrame(end));
        break;
      }
      const text = JSON.stringify(summary);
      if (text !== sent) {
        sent = text;
        lastWrite = Date.now();
        if (!(await writer.write(frame('batch.progress', summary)))) return;
      } else if (Date.now() - lastWrite >= tuning.keepAliveMs) {
        lastWrite = Date.now();
        if (!(await writer.write(': keep-alive\n\n'))) return;
      }
      await sleep(tuning.progressEveryMs, undefined, { signal: writer.signal }).catch(() => undefined);
    }
  } catch (err) {
    log.warn({ err, batchId: id, requestId: req.requestId }, 'event stream failed');
    await writer.write(frame('error', { code: ErrorCode.unavailable, message: 'the event stream failed; reconnect' }));
  }
  res.end();
}

/** The SSE stream of a batch's events after sequence number `afterSeq`, with progress and keep-alives. */
async function streamEvents(id: string, afterSeq: number, context: RouteContext): Promise<void> {
  const { req, res, deps } = context;
  const { batches, log, streamTuning: tuning } = deps;
  const store = batches.store;
  const writer = openStream(context);
  let seq = afterSeq;
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
    const recordMissingEnd = (batchId: string) => batches.outcome(batchId);
    for await (const step of tailBatchEvents({
      store,
      recordMissingEnd,
      batchId: id,
      afterSeq: seq,
      signal: writer.signal,
    })) {
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
        progress
          .then(
            (summary) => (progressReady = summary),
            (err: unknown) => (progressError = err),
          )
          .finally(() => (progress = undefined));
      } else if (now - lastWrite >= tuning.keepAliveMs) {
        if (!(await send(': keep-alive\n\n'))) return;
      }
    }
  } catch (err) {
    // Headers are sent: report the fault as an event the client can read, then close.
    log.warn({ err, batchId: id, requestId: req.requestId }, 'event stream failed');
    await send(
      frame('error', { code: ErrorCode.unavailable, message: 'the event stream failed; reconnect with Last-Event-ID' }),
    );
  }
  res.end();
}

function frame(event: string, data: unknown, id?: string): string {
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function itemFrame(e: StoredItemEvent): string {
  return frame(itemEventType(e.status), itemOutcome(e), String(e.seq));
}

function endFrame(end: BatchEnd): string {
  const { failures: _failures, ...summary } = end.summary;
  return frame(endEventType(end.status), summary, END_EVENT_ID);
}
