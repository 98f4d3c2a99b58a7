import type { ItemResult } from '../contracts/batch.js';
import { PermanentItemFailure } from '../contracts/item-failure-type.js';
import { OpenAIBatchEndpoint } from '../contracts/openai.js';
import type { ItemStore, StoredItemEvent } from '../stores/item-store.js';
import type { OpenAIBatchRecord } from '../stores/openai-store.js';
import { embeddingsResponse } from './openai-embeddings.js';

// A batch's output and error files are not stored: they are its event log (the outcomes in the order they were
// recorded) written as OpenAI's JSONL, so a line is there the moment its request finishes, and a reader that comes
// back later reads the same bytes again, then the lines written since.

/** Separates a custom_id from a part number in the item ids of a request with several inputs (never in ids). */
const PART = '\u001f';

/**
 * The item id of input `j` of a request with `of` inputs: its custom_id when it has one input; otherwise the
 * custom_id, a control character (which no custom_id holds) and `j/of`.
 */
export function requestItemId(customId: string, j: number, of: number): string {
  return of === 1 ? customId : `${customId}${PART}${j}/${of}`;
}

function parseItemId(id: string): { customId: string; part: number; of: number } {
  const at = id.lastIndexOf(PART);
  if (at === -1) return { customId: id, part: 0, of: 1 };
  const [part, of] = id
    .slice(at + 1)
    .split('/')
    .map(Number) as [number, number];
  return { customId: id.slice(0, at), part, of };
}

/** Which file of a batch: its successful requests, or its failed ones. */
export type BatchFileKind = 'output' | 'errors';

/** One finished request: its lines in either file. */
interface FinishedRequest {
  customId: string;
  /** The index of the request's first item: its request id. */
  first: number;
  succeeded: boolean;
  results: ItemResult[];
  error?: { type: string; message: string };
}

const PAGE = 1000;

/**
 * The requests of a batch as they finished, in the order of its event log: a request with one input when its
 * item's outcome is recorded, one with several when all its items have succeeded or one has failed. Each request
 * is reported at most once as failed and once as succeeded: one that failed, was run again (retry-failed) and then
 * succeeded is in both files.
 */
async function* finishedRequests(store: ItemStore, batchId: string): AsyncGenerator<FinishedRequest> {
  const parts = new Map<string, { results: (ItemResult | undefined)[]; done: number; failed: boolean }>();
  const reported = new Set<string>();
  const failed = new Set<string>();
  for (let after = 0; ;) {
    const events = await store.listEvents(batchId, after, PAGE);
    for (const event of events) {
      after = event.seq;
      if (event.kind !== 'item') return;
      const finished = collect(event, parts, reported, failed);
      if (finished) yield finished;
    }
    if (events.length < PAGE) return;
  }
}

function collect(
  event: StoredItemEvent,
  parts: Map<string, { results: (ItemResult | undefined)[]; done: number; failed: boolean }>,
  reported: Set<string>,
  failed: Set<string>,
): FinishedRequest | undefined {
  const { customId, part, of } = parseItemId(event.id);
  const first = event.index - part;
  if (of === 1) {
    if (event.status === 'succeeded') {
      if (reported.has(customId)) return undefined;
      reported.add(customId);
      return { customId, first, succeeded: true, results: [event.result!] };
    }
    if (failed.has(customId)) return undefined;
    failed.add(customId);
    return { customId, first, succeeded: false, results: [], error: event.error };
  }
  let request = parts.get(customId);
  if (!request) {
    request = { results: new Array<ItemResult | undefined>(of), done: 0, failed: false };
    parts.set(customId, request);
  }
  if (event.status === 'failed') {
    if (request.failed || reported.has(customId)) return undefined;
    request.failed = true;
    return { customId, first, succeeded: false, results: [], error: event.error };
  }
  if (request.results[part] === undefined) {
    request.results[part] = event.result!;
    request.done++;
  }
  if (request.done < of || reported.has(customId)) return undefined;
  reported.add(customId);
  parts.delete(customId);
  return { customId, first, succeeded: true, results: request.results as ItemResult[] };
}

/** The lines of a batch's output or error file, each ending in a newline, as far as the batch has got. */
export async function* batchFileLines(
  store: ItemStore,
  record: OpenAIBatchRecord,
  kind: BatchFileKind,
): AsyncGenerator<string> {
  for await (const request of finishedRequests(store, record.id)) {
    if (request.succeeded !== (kind === 'output')) continue;
    yield `${JSON.stringify(outputLine(record, request))}\n`;
  }
}

function outputLine(record: OpenAIBatchRecord, request: FinishedRequest): unknown {
  const requestId = `req_${record.id}_${request.first}`;
  const head = { id: `batch_req_${record.id}_${request.first}`, custom_id: request.customId };
  if (request.succeeded) {
    const body =
      record.endpoint === OpenAIBatchEndpoint.embeddings
        ? embeddingsResponse(record.model!, request.results, record.encodingFormat)
        : request.results[0];
    return { ...head, response: { status_code: 200, request_id: requestId, body }, error: null };
  }
  const error = request.error ?? { type: 'Unknown', message: 'the request failed' };
  const permanent = (Object.values(PermanentItemFailure) as string[]).includes(error.type);
  return {
    ...head,
    response: {
      status_code: permanent ? 400 : 500,
      request_id: requestId,
      body: {
        error: {
          message: error.message,
          type: permanent ? 'invalid_request_error' : 'server_error',
          param: null,
          code: error.type,
        },
      },
    },
    error: null,
  };
}

/**
 * Requests completed and failed so far. With one item per request these are the batch's item counts; a batch with
 * requests of several inputs counts its event log (each request once, by its latest outcome).
 */
export async function requestCounts(
  store: ItemStore,
  record: OpenAIBatchRecord,
  itemCounts: { succeeded: number; failed: number },
): Promise<{ total: number; completed: number; failed: number }> {
  if (!record.multiInput) {
    return { total: record.lines, completed: itemCounts.succeeded, failed: itemCounts.failed };
  }
  const outcome = new Map<string, boolean>();
  for await (const request of finishedRequests(store, record.id)) {
    if (request.succeeded || !outcome.get(request.customId)) outcome.set(request.customId, request.succeeded);
  }
  let completed = 0;
  for (const ok of outcome.values()) if (ok) completed++;
  return { total: record.lines, completed, failed: outcome.size - completed };
}
