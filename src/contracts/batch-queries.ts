import { z } from 'zod';
import { BatchOptions, BatchStatus, FinishedItemStatus, ItemStatus, ModelName } from './batch.js';
import { MAX_LIST_CURSOR_LENGTH, MAX_OPTIONS_HEADER_LENGTH, MODEL_VERSION } from './limits.js';
import { WebhookEventKind, WebhookUrl } from './webhook.js';

// Query parameters (and the one header) of the batch routes. Query values arrive as strings: numbers are
// parsed (queryNumber), and every object is strict, so an unknown parameter is a 400 that names it.

/** A number as JSON writes one: no sign but minus, no leading zeros, no hex, no spaces. */
const DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * A number in a query string, checked by `schema`. Only a decimal is read as a number: `+1`, `0x10`, `1 ` or the
 * empty string stay strings and are refused, where zod's coercion (`Number()`) would take them, though the
 * document promises a number, and would take null as 0, which made the document call the parameter nullable.
 */
export function queryNumber<T extends z.ZodType<number>>(schema: T) {
  return z.preprocess((v) => (typeof v === 'string' && DECIMAL.test(v) ? Number(v) : v), schema);
}

const CURSOR = 'The `nextCursor` of the previous page.';
const NOT_A_CURSOR = 'not a cursor from a previous page';

/**
 * Whether `cursor` can be a page token of Temporal visibility, whose SQL and Elasticsearch stores both hand out a
 * JSON object (base64url here): anything else would reach the server and fail there, not as the client's fault.
 */
function isPageToken(cursor: string): boolean {
  if (cursor === '') return true; // the first page
  try {
    const token: unknown = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(cursor, 'base64url')),
    );
    return typeof token === 'object' && token !== null && !Array.isArray(token);
  } catch {
    return false;
  }
}

/** `GET /v1/batches`: the API key's batches, newest first. */
export const ListBatchesQuery = z
  .object({
    status: z.enum(BatchStatus).optional(),
    model: ModelName.optional(),
    cursor: z
      .string()
      .max(MAX_LIST_CURSOR_LENGTH, { abort: true })
      .regex(/^[A-Za-z0-9_-]*$/, { message: NOT_A_CURSOR, abort: true })
      .refine(isPageToken, NOT_A_CURSOR)
      .optional()
      .meta({ description: `${CURSOR} Opaque: a cursor no listing gave out is a 400.` }),
    limit: queryNumber(z.number().int().min(1).max(100)).default(20),
  })
  .strict();
export type ListBatchesQuery = z.infer<typeof ListBatchesQuery>;

/** `GET /v1/batches/:id/items`: one page of items in index order. */
export const ItemsQuery = z
  .object({
    status: z.enum(ItemStatus).optional(),
    cursor: queryNumber(z.number().int().min(0)).optional().meta({ description: CURSOR }),
    limit: queryNumber(z.number().int().min(1).max(1000)).default(100),
  })
  .strict();
export type ItemsQuery = z.infer<typeof ItemsQuery>;

/** `GET /v1/batches/:id/results`: every finished item, or with `follow=true` each as it is recorded. */
export const ResultsQuery = z
  .object({
    follow: z.enum(['true', 'false']).default('false'),
    status: FinishedItemStatus.optional(),
  })
  .strict();
export type ResultsQuery = z.infer<typeof ResultsQuery>;

/** The id of the terminal SSE event: reconnecting after it gets 204 (EventSource then stops reconnecting). */
export const END_EVENT_ID = 'end';

/** The last event id a client saw: a sequence number, or the end (empty: from the start). */
export const LastEventId = z
  .string()
  .regex(new RegExp(`^(\\d{1,15}|${END_EVENT_ID})?$`), 'expected an event id of this stream');

/** `GET /v1/batches/:id/events`: where to resume, for clients that cannot set `Last-Event-ID`. */
export const EventsQuery = z
  .object({
    lastEventId: LastEventId.optional().meta({
      description: 'As `Last-Event-ID`, for clients that cannot set headers.',
    }),
    items: z
      .enum(['true', 'false'])
      .default('true')
      .meta({
        description:
          '`false`: no item events, only `batch.progress` (each second while the batch runs) and the end event, from ' +
          'now on: what a dashboard of a large batch needs, without reading the whole log.',
      }),
  })
  .strict();
export type EventsQuery = z.infer<typeof EventsQuery>;

/** `GET /v1/batches/:id/events`: the header EventSource sends when it reconnects. */
export const EventsHeaders = z.object({
  'Last-Event-ID': LastEventId.optional().meta({ description: 'The last event id seen: a sequence number or `end`.' }),
});
export type EventsHeaders = z.infer<typeof EventsHeaders>;

const EVENT_KIND = Object.values(WebhookEventKind).join('|');

/**
 * Model, version, webhook and options of an NDJSON submission (`POST /v1/batches` with an NDJSON body), from
 * query parameters or `Batchline-*` headers. A batch option stays a loose string or number here; BatchOptions
 * checks it afterwards, so its message names the option.
 */
export const NdjsonSubmitParams = z
  .object({
    model: ModelName.meta({ description: 'NDJSON bodies only (required there, or `Batchline-Model`).' }),
    version: queryNumber(z.number().int().positive())
      .optional()
      .meta({ description: 'NDJSON bodies only (or `Batchline-Version`).' }),
    webhook: WebhookUrl.optional().meta({
      description: 'NDJSON bodies only: the webhook URL, an absolute `http://` or `https://` URL without credentials.',
    }),
    webhookEvents: z
      .string()
      .regex(new RegExp(`^(${EVENT_KIND})(,(${EVENT_KIND}))?$`), "expected 'item', 'batch' or 'item,batch'")
      .optional()
      .meta({ description: 'NDJSON bodies only: which webhook events (default both).' }),
    ...Object.fromEntries(Object.entries(BatchOptions.shape).map(([k, field]) => [k, queryField(field)])),
  })
  .strict();
export type NdjsonSubmitParams = z.infer<typeof NdjsonSubmitParams>;

/** The headers an NDJSON submission may name its model, version and options in instead of the query. */
export const NdjsonSubmitHeaders = z.object({
  'Batchline-Model': ModelName.optional().meta({
    description: 'NDJSON bodies: the model, when not a query parameter.',
  }),
  'Batchline-Version': z
    .string()
    .regex(MODEL_VERSION, 'expected a model version (a positive integer)')
    .optional()
    .meta({ description: 'NDJSON bodies: the version.' }),
  'Batchline-Options': z
    .string()
    .max(MAX_OPTIONS_HEADER_LENGTH)
    .optional()
    .meta({ description: 'NDJSON bodies: `BatchOptions` as JSON.' }),
});
export type NdjsonSubmitHeaders = z.infer<typeof NdjsonSubmitHeaders>;

/**
 * A batch option as a query parameter: words stay strings (zod's enum check follows); numbers are parsed. Its
 * document entry is the option's own schema (type, bounds, values, default): BatchOptions refuses what is outside it.
 */
function queryField(field: z.ZodType): z.ZodType {
  const inner = field instanceof z.ZodDefault ? field.unwrap() : field;
  const { $schema: _, ...documented } = z.toJSONSchema(field, { io: 'input', unrepresentable: 'any' });
  const loose = inner instanceof z.ZodEnum ? z.string() : queryNumber(z.number());
  return loose.optional().meta(documented);
}
