import { packageVersion } from '../version.js';
import { z } from 'zod';
import {
  BatchItem,
  BatchListPage,
  BatchOptions,
  BatchResource,
  CreateBatchRequest,
  CreateBatchResponse,
  ItemError,
  ItemOutcome,
  ItemResult,
  ItemsPage,
  ItemView,
} from '../contracts/batch.js';
import {
  KServeErrorResponse,
  KServeInferRequest,
  KServeInferResponse,
  KServeModelMetadata,
  KServeModelReady,
  KServeServerMetadata,
  ModelList,
  ModelResource,
  PredictAsyncRequest,
  PredictRequest,
  PredictResponse,
  PredictTimeoutResponse,
  TaskAcceptedResponse,
  TaskResource,
} from '../contracts/predict.js';
import { FailedDelivery, WebhookRegistration } from '../contracts/webhook.js';
import { EventsQuery, ResultsQuery } from './routes/batch-streams.js';
import { ItemsQuery, ListBatchesQuery, NdjsonSubmitParams } from './routes/batches.js';

// The OpenAPI 3.1 document of the HTTP API, generated from the zod schemas the routes parse with (requests in
// zod's `input` view, responses in its `output` view), so the document cannot drift from what is validated.
// Served as GET /openapi.json and browsed at GET /docs (routes/docs.ts).

/** The wire codes of the one error shape; `internal` is the 500 that never shows a stack trace. */
export const ErrorCode = z.enum([
  'invalid_request',
  'unauthorized',
  'not_found',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'unprocessable',
  'rate_limited',
  'unavailable',
  'timeout',
  'internal',
]);

/** One problem with a request: where (a field path, `line.<n>` for NDJSON, or a header name) and what. */
export const ErrorDetailSchema = z
  .object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() })
  .strict();

/** Every failed /v1 and probe request: `{ error: { code, message, details? } }` (middleware/errors.ts sends it). */
export const ErrorBody = z
  .object({
    error: z.object({ code: ErrorCode, message: z.string(), details: z.array(ErrorDetailSchema).optional() }).strict(),
  })
  .strict();
export type ErrorBody = z.infer<typeof ErrorBody>;


/** The data of `batch.progress` and of the terminal `batch.*` events: the batch's state without its links. */
export const BatchProgress = BatchResource.omit({ links: true, webhook: true, metadata: true });

const ControlAccepted = z.object({
  id: z.string(),
  action: z.enum(['cancel', 'pause', 'resume']),
  accepted: z.literal(true),
});
const RetryFailedResponse = z.object({ id: z.string(), retried: z.number().int() });
const Health = z.object({ status: z.literal('ok') });
const Readiness = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string() })),
});
const KServeLive = z.object({ live: z.boolean() });
const KServeReady = z.object({ ready: z.boolean() });

/** Request bodies, documented as zod parses them (defaults optional). */
const REQUEST_SCHEMAS = {
  CreateBatchRequest,
  BatchOptions,
  BatchItem,
  WebhookRegistration,
  PredictRequest,
  PredictAsyncRequest,
  KServeInferRequest,
};

/** Response bodies, documented as the routes produce them. */
const RESPONSE_SCHEMAS = {
  CreateBatchResponse,
  BatchResource,
  BatchListPage,
  ItemsPage,
  ItemView,
  ItemResult,
  ItemError,
  ItemOutcome,
  BatchProgress,
  FailedDelivery,
  ControlAccepted,
  RetryFailedResponse,
  ErrorBody,
  Health,
  Readiness,
  PredictResponse,
  PredictTimeoutResponse,
  TaskAcceptedResponse,
  TaskResource,
  ModelResource,
  ModelList,
  KServeLive,
  KServeReady,
  KServeModelMetadata,
  KServeModelReady,
  KServeServerMetadata,
  KServeInferResponse,
  KServeErrorResponse,
};

type Json = Record<string, unknown>;
const ref = (name: keyof typeof REQUEST_SCHEMAS | keyof typeof RESPONSE_SCHEMAS) => ({
  $ref: `#/components/schemas/${name}`,
});

/** JSON Schema 2020-12 of each named schema; a schema used inside another named one becomes a $ref to it. */
function componentSchemas(): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [io, schemas] of [
    ['input', REQUEST_SCHEMAS],
    ['output', RESPONSE_SCHEMAS],
  ] as const) {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
    const { schemas: generated } = z.toJSONSchema(registry, {
      target: 'draft-2020-12',
      io,
      unrepresentable: 'any',
      uri: (id) => `#/components/schemas/${id}`,
    });
    for (const [id, schema] of Object.entries(generated)) {
      if (out[id]) throw new Error(`schema '${id}' is both a request and a response schema`);
      const { $schema: _dialect, $id: _id, ...rest } = schema as Json;
      out[id] = rest;
    }
  }
  return out;
}

/** A strict zod object of query parameters as OpenAPI parameters (zod's input view: coerced from strings). */
function queryParameters(schema: z.ZodObject, notes: Record<string, string> = {}, optional = false): Json[] {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as {
    properties: Record<string, Json>;
    required?: string[];
  };
  return Object.entries(json.properties).map(([name, s]) => ({
    name,
    in: 'query',
    required: !optional && (json.required ?? []).includes(name),
    ...(notes[name] ? { description: notes[name] } : {}),
    schema: s,
  }));
}

// Error responses: one per status, in the house shape under /v1 and the probes, in the protocol's under /v2.
const ERRORS = {
  400: [
    'BadRequest',
    'The request is malformed: bad JSON or NDJSON, unknown or missing fields, wrong types, non-finite numbers, nesting deeper than 32 levels, inputs that do not fit the model. `details` names each field path (`line.<n>` for an NDJSON line).',
  ],
  401: [
    'Unauthorized',
    'No API key, an unknown one, or an Authorization header that is not `Bearer <key>` (only when API_KEYS is configured).',
  ],
  404: [
    'NotFound',
    'No such thing for this API key: unknown or malformed ids and other tenants’ batches and tasks look alike.',
  ],
  409: [
    'Conflict',
    'The request conflicts with the state of what it names: the batch has ended, or a request with this Idempotency-Key is still being processed.',
  ],
  413: ['PayloadTooLarge', 'The body is over MAX_BODY_BYTES, or the batch over MAX_BATCH_ITEMS items.'],
  415: ['UnsupportedMediaType', 'The body comes in a media type the route does not take.'],
  422: ['Unprocessable', 'The Idempotency-Key was already used with a different request.'],
  429: [
    'RateLimited',
    'More than RATE_LIMIT_PER_MINUTE requests creating work for this API key; retry after `Retry-After` seconds.',
  ],
  503: [
    'Unavailable',
    'Temporal (or the model) is unavailable; a request that creates work has queued nothing. Retry after `Retry-After` seconds.',
  ],
  504: ['Timeout', 'The result was not ready in time; the task goes on and the body names it.'],
} as const;
type ErrorStatus = keyof typeof ERRORS;

const RETRY_AFTER = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 0 } },
};

function errorResponses(): Json {
  const responses: Json = {};
  for (const [status, [name, description]] of Object.entries(ERRORS)) {
    const headers =
      status === '429' || status === '503'
        ? RETRY_AFTER
        : status === '401'
          ? {
              'WWW-Authenticate': {
                description: '`Bearer`, or `Bearer error="invalid_token"` for an unknown key.',
                schema: { type: 'string' },
              },
            }
          : undefined;
    const body = status === '504' ? ref('PredictTimeoutResponse') : ref('ErrorBody');
    responses[name] = {
      description,
      ...(headers ? { headers } : {}),
      content: { 'application/json': { schema: body } },
    };
    responses[`V2${name}`] = {
      description: `${description} In the Open Inference Protocol's error shape${status === '504' ? ', with the task' : ''}.`,
      ...(headers ? { headers } : {}),
      content: { 'application/json': { schema: ref('KServeErrorResponse') } },
    };
  }
  return responses;
}

interface OperationSpec {
  operationId: string;
  summary: string;
  description?: string;
  tag: 'Batches' | 'Batch streams' | 'Predictions' | 'Models' | 'Open Inference Protocol' | 'Operations';
  /** No API key needed (probes, metrics, docs). */
  public?: boolean;
  /** Errors in the /v2 protocol shape. */
  v2?: boolean;
  parameters?: Json[];
  requestBody?: Json;
  responses: Json;
  errors?: ErrorStatus[];
}

function operation(spec: OperationSpec): Json {
  const errors = new Set<ErrorStatus>(spec.errors ?? []);
  if (!spec.public) errors.add(401);
  const responses: Json = { ...spec.responses };
  for (const status of [...errors].sort())
    responses[status] = { $ref: `#/components/responses/${spec.v2 ? 'V2' : ''}${ERRORS[status][0]}` };
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    tags: [spec.tag],
    ...(spec.public ? { security: [] } : {}),
    ...(spec.parameters ? { parameters: spec.parameters } : {}),
    ...(spec.requestBody ? { requestBody: spec.requestBody } : {}),
    responses,
  };
}

const json = (schema: Json, description: string, extra: Json = {}) => ({
  description,
  ...extra,
  content: { 'application/json': { schema } },
});
const jsonBody = (schema: Json) => ({ required: true, content: { 'application/json': { schema } } });
const param = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const LOCATION = {
  headers: { Location: { description: 'Where the created resource is read.', schema: { type: 'string' } } },
};

const SSE_DESCRIPTION = `Server-Sent Events from the batch's event log, resumable exactly:

| event | id | data |
|---|---|---|
| \`item.succeeded\`, \`item.failed\` | the event's sequence number | \`ItemOutcome\` |
| \`batch.progress\` (at most once a second) | the last item event's id | \`BatchProgress\` |
| \`batch.completed\`, \`batch.canceled\`, \`batch.failed\` (last) | \`end\` | \`BatchProgress\` |
| \`error\` (the stream failed; reconnect) | none | \`{ code, message }\` |

The stream opens with \`retry: 2000\` and sends \`: keep-alive\` comments when quiet. To resume, send the last id
seen as the \`Last-Event-ID\` header (or \`lastEventId\`): events after it follow; after \`end\` the answer is 204.`;

/** The whole document; routes/docs.ts builds it once at start and serves the result. */
export function buildOpenApiDocument(): Json {
  const batchId = param('BatchId');
  const idempotencyKey = param('IdempotencyKey');
  const control = (action: 'cancel' | 'pause' | 'resume', summary: string) =>
    operation({
      operationId: `${action}Batch`,
      summary,
      tag: 'Batches',
      parameters: [batchId],
      responses: { 202: json(ref('ControlAccepted'), 'The signal was delivered.') },
      errors: [404, 409, 503],
    });
  const infer = operation({
    operationId: 'kserveInfer',
    summary: 'Infer a batch of rows (Open Inference Protocol)',
    description:
      "The inputs' first dimension is the batch: each row becomes one item of an online task on the interactive queue, and the outputs are stacked back along it. Waits up to PREDICT_TIMEOUT_MS.",
    tag: 'Open Inference Protocol',
    v2: true,
    parameters: [param('ModelName'), idempotencyKey],
    requestBody: jsonBody(ref('KServeInferRequest')),
    responses: { 200: json(ref('KServeInferResponse'), 'The outputs, one row per input row.') },
    errors: [400, 404, 409, 413, 415, 422, 429, 503, 504],
  });
  const v2Model = (what: 'metadata' | 'ready' | 'infer', versioned: boolean): Json => {
    const version = versioned ? [param('ModelVersion')] : [];
    if (what === 'infer')
      return {
        ...infer,
        operationId: `kserveInfer${versioned ? 'Version' : ''}`,
        parameters: [param('ModelName'), ...version, idempotencyKey],
      };
    return operation({
      operationId: `kserveModel${what === 'ready' ? 'Ready' : 'Metadata'}${versioned ? 'Version' : ''}`,
      summary:
        what === 'ready'
          ? `Whether the model${versioned ? ' version' : ''} can serve`
          : `Model${versioned ? ' version' : ''} metadata`,
      tag: 'Open Inference Protocol',
      v2: true,
      parameters: [param('ModelName'), ...version],
      responses:
        what === 'ready'
          ? { 200: json(ref('KServeModelReady'), 'Ready.') }
          : { 200: json(ref('KServeModelMetadata'), 'Tensors with -1 for the batch dimension.') },
      errors: what === 'ready' ? [400, 404] : [400, 404, 503],
    });
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'batchline',
      version: packageVersion(),
      summary: 'Durable batch inference on Temporal and onnxruntime-node',
      description:
        'Batches of model inputs run as Temporal workflows; online predictions and the Open Inference Protocol (KServe v2) share the models. ' +
        'Every /v1 error has one shape, `ErrorBody`; /v2 errors have the protocol’s, `{ "error": "<message>" }`. ' +
        'Requests that create work take an `Idempotency-Key` header.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    security: [{ apiKey: [] }],
    tags: [
      { name: 'Batches', description: 'Submit, list, read and steer batches.' },
      { name: 'Batch streams', description: 'Results (NDJSON) and events (SSE) of a batch, resumable.' },
      { name: 'Predictions', description: 'Online predictions of one item on the interactive queue.' },
      { name: 'Models', description: 'The model repository.' },
      { name: 'Open Inference Protocol', description: 'KServe v2 / Triton-compatible endpoints.' },
      { name: 'Operations', description: 'Probes, metrics and this document (no API key needed).' },
    ],
    paths: {
      '/healthz': {
        get: operation({
          operationId: 'liveness',
          summary: 'Liveness: the API process serves',
          tag: 'Operations',
          public: true,
          responses: { 200: json(ref('Health'), 'Alive.') },
        }),
      },
      '/readyz': {
        get: operation({
          operationId: 'readiness',
          summary: 'Readiness: Temporal answers and workers poll both task queues',
          tag: 'Operations',
          public: true,
          responses: {
            200: json(ref('Readiness'), 'Ready.'),
            503: json(ref('Readiness'), 'Not ready; `checks` says what is missing.', { headers: RETRY_AFTER }),
          },
        }),
      },
      '/metrics': {
        get: operation({
          operationId: 'metrics',
          summary: "The API's Prometheus metrics",
          tag: 'Operations',
          public: true,
          responses: {
            200: {
              description: 'Prometheus text exposition format.',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
          },
        }),
      },
      '/openapi.json': {
        get: operation({
          operationId: 'openapi',
          summary: 'This document',
          tag: 'Operations',
          public: true,
          responses: { 200: json({ type: 'object' }, 'The OpenAPI 3.1 document.') },
        }),
      },
      '/docs': {
        get: operation({
          operationId: 'docs',
          summary: 'This document, browsable (Swagger UI, served offline)',
          tag: 'Operations',
          public: true,
          responses: {
            200: { description: 'An HTML page.', content: { 'text/html': { schema: { type: 'string' } } } },
          },
        }),
      },
      '/v2/health/live': {
        get: operation({
          operationId: 'kserveLive',
          summary: 'Server liveness (Open Inference Protocol)',
          tag: 'Open Inference Protocol',
          public: true,
          responses: { 200: json(ref('KServeLive'), 'Alive.') },
        }),
      },
      '/v2/health/ready': {
        get: operation({
          operationId: 'kserveReady',
          summary: 'Server readiness (Open Inference Protocol)',
          tag: 'Open Inference Protocol',
          public: true,
          responses: {
            200: json(ref('KServeReady'), 'Ready.'),
            503: json(ref('KServeReady'), 'Not ready.', { headers: RETRY_AFTER }),
          },
        }),
      },
      '/v1/batches': {
        post: operation({
          operationId: 'createBatch',
          summary: 'Submit a batch',
          description:
            'A JSON `CreateBatchRequest`, or an NDJSON body of one `BatchItem` per line, streamed into the item store (model, version, webhook and options then come as query parameters or `Batchline-*` headers). ' +
            'Every item is checked against the model before anything is queued.',
          tag: 'Batches',
          parameters: [
            idempotencyKey,
            ...queryParameters(
              NdjsonSubmitParams,
              {
                model: 'NDJSON bodies only (required there, or `Batchline-Model`).',
                version: 'NDJSON bodies only (or `Batchline-Version`).',
                webhook: 'NDJSON bodies only: the webhook URL.',
                webhookEvents: 'NDJSON bodies only: which webhook events (default both).',
              },
              true,
            ),
            {
              name: 'Batchline-Model',
              in: 'header',
              description: 'NDJSON bodies: the model, when not a query parameter.',
              schema: { type: 'string' },
            },
            {
              name: 'Batchline-Version',
              in: 'header',
              description: 'NDJSON bodies: the version.',
              schema: { type: 'string' },
            },
            {
              name: 'Batchline-Options',
              in: 'header',
              description: 'NDJSON bodies: `BatchOptions` as JSON.',
              schema: { type: 'string' },
            },
          ],
          requestBody: {
            required: true,
            description: 'JSON: a CreateBatchRequest. NDJSON: one BatchItem per line (the schema describes one line).',
            content: {
              'application/json': { schema: ref('CreateBatchRequest') },
              ...Object.fromEntries(
                ['application/x-ndjson', 'application/jsonl', 'application/ndjson'].map((type) => [
                  type,
                  { schema: ref('BatchItem') },
                ]),
              ),
            },
          },
          responses: { 202: json(ref('CreateBatchResponse'), 'Accepted: the batch runs.', LOCATION) },
          errors: [400, 409, 413, 415, 422, 429, 503],
        }),
        get: operation({
          operationId: 'listBatches',
          summary: "The API key's batches, newest first",
          tag: 'Batches',
          parameters: queryParameters(ListBatchesQuery, { cursor: 'The `nextCursor` of the previous page.' }),
          responses: { 200: json(ref('BatchListPage'), 'One page.') },
          errors: [400, 503],
        }),
      },
      '/v1/batches/{id}': {
        get: operation({
          operationId: 'getBatch',
          summary: "A batch's state, counts, rate and webhook deliveries",
          tag: 'Batches',
          parameters: [batchId],
          responses: { 200: json(ref('BatchResource'), 'The batch.') },
          errors: [404, 503],
        }),
      },
      '/v1/batches/{id}/items': {
        get: operation({
          operationId: 'listItems',
          summary: 'One page of items in index order',
          tag: 'Batches',
          parameters: [batchId, ...queryParameters(ItemsQuery, { cursor: 'The `nextCursor` of the previous page.' })],
          responses: { 200: json(ref('ItemsPage'), 'One page.') },
          errors: [400, 404, 503],
        }),
      },
      '/v1/batches/{id}/items/{itemId}': {
        get: operation({
          operationId: 'getItem',
          summary: 'One item by its id (its index when submitted without one)',
          tag: 'Batches',
          parameters: [
            batchId,
            { name: 'itemId', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 256 } },
          ],
          responses: { 200: json(ref('ItemView'), 'The item.') },
          errors: [404, 503],
        }),
      },
      '/v1/batches/{id}/results': {
        get: operation({
          operationId: 'streamResults',
          summary: 'Every finished item as NDJSON',
          description:
            'One `ItemOutcome` per line in index order; with `follow=true`, outcomes as they are recorded until the batch ends.',
          tag: 'Batch streams',
          parameters: [batchId, ...queryParameters(ResultsQuery)],
          responses: {
            200: {
              description: 'One ItemOutcome per line (this schema describes a line).',
              content: { 'application/x-ndjson': { schema: ref('ItemOutcome') } },
            },
          },
          errors: [400, 404, 503],
        }),
      },
      '/v1/batches/{id}/events': {
        get: operation({
          operationId: 'streamEvents',
          summary: 'Item, progress and end events (Server-Sent Events)',
          description: SSE_DESCRIPTION,
          tag: 'Batch streams',
          parameters: [
            batchId,
            {
              name: 'Last-Event-ID',
              in: 'header',
              description: 'The last event id seen: a sequence number or `end`.',
              schema: { type: 'string', pattern: '^(\\d{1,15}|end)$' },
            },
            ...queryParameters(EventsQuery, {
              lastEventId: 'As `Last-Event-ID`, for clients that cannot set headers.',
            }),
          ],
          responses: {
            200: { description: 'The event stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            204: { description: 'The client has already seen the end (`Last-Event-ID: end`).' },
          },
          errors: [400, 404, 503],
        }),
      },
      '/v1/batches/{id}/cancel': {
        post: control('cancel', 'Cancel a batch: running items finish, the rest are canceled'),
      },
      '/v1/batches/{id}/pause': { post: control('pause', 'Pause a batch: no new items start') },
      '/v1/batches/{id}/resume': { post: control('resume', 'Resume a paused batch') },
      '/v1/batches/{id}/retry-failed': {
        post: operation({
          operationId: 'retryFailed',
          summary: "Run a batch's failed items again",
          tag: 'Batches',
          parameters: [batchId],
          responses: { 200: json(ref('RetryFailedResponse'), 'How many items were queued again.') },
          errors: [404, 409, 503],
        }),
      },
      '/v1/predict': {
        post: operation({
          operationId: 'predict',
          summary: 'Predict one item and wait for the result',
          description:
            'Waits up to `timeoutMs` (default PREDICT_TIMEOUT_MS, at most PREDICT_MAX_TIMEOUT_MS); past it, 504 names the task, which goes on.',
          tag: 'Predictions',
          parameters: [idempotencyKey],
          requestBody: jsonBody(ref('PredictRequest')),
          responses: { 200: json(ref('PredictResponse'), 'The result.') },
          errors: [400, 409, 413, 415, 422, 429, 503, 504],
        }),
      },
      '/v1/predict/async': {
        post: operation({
          operationId: 'predictAsync',
          summary: 'Start a prediction of one item',
          tag: 'Predictions',
          parameters: [idempotencyKey],
          requestBody: jsonBody(ref('PredictAsyncRequest')),
          responses: { 202: json(ref('TaskAcceptedResponse'), 'The task runs; poll `statusUrl`.', LOCATION) },
          errors: [400, 409, 413, 415, 422, 429, 503],
        }),
      },
      '/v1/tasks/{taskId}': {
        get: operation({
          operationId: 'getTask',
          summary: "An online task's state and result",
          tag: 'Predictions',
          parameters: [
            { name: 'taskId', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{20}$' } },
          ],
          responses: { 200: json(ref('TaskResource'), 'The task.') },
          errors: [404, 503],
        }),
      },
      '/v1/models': {
        get: operation({
          operationId: 'listModels',
          summary: 'Every servable model',
          tag: 'Models',
          responses: { 200: json(ref('ModelList'), 'The models.') },
        }),
      },
      '/v1/models/{name}': {
        get: operation({
          operationId: 'getModel',
          summary: "A model's versions, signature and labels",
          tag: 'Models',
          parameters: [param('ModelName')],
          responses: { 200: json(ref('ModelResource'), 'The model.') },
          errors: [404, 503],
        }),
      },
      '/v2': {
        get: operation({
          operationId: 'kserveServerMetadata',
          summary: 'Server metadata: name, version, protocol extensions (Open Inference Protocol)',
          tag: 'Open Inference Protocol',
          v2: true,
          responses: { 200: json(ref('KServeServerMetadata'), 'The server.') },
        }),
      },
      '/v2/models/{name}': { get: v2Model('metadata', false) },
      '/v2/models/{name}/versions/{version}': { get: v2Model('metadata', true) },
      '/v2/models/{name}/ready': { get: v2Model('ready', false) },
      '/v2/models/{name}/versions/{version}/ready': { get: v2Model('ready', true) },
      '/v2/models/{name}/infer': { post: v2Model('infer', false) },
      '/v2/models/{name}/versions/{version}/infer': { post: v2Model('infer', true) },
    },
    components: {
      schemas: componentSchemas(),
      responses: errorResponses(),
      parameters: {
        BatchId: {
          name: 'id',
          in: 'path',
          required: true,
          description: 'A batch id (20 hex digits); anything else is 404.',
          schema: { type: 'string', pattern: '^[0-9a-f]{20}$' },
        },
        ModelName: {
          name: 'name',
          in: 'path',
          required: true,
          schema: { type: 'string', minLength: 1, maxLength: 128 },
        },
        ModelVersion: {
          name: 'version',
          in: 'path',
          required: true,
          schema: { type: 'string', pattern: '^[1-9]\\d{0,8}$' },
        },
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          description:
            'Makes a request that creates work safe to retry: the same key and request replays the first response (`Idempotent-Replayed: true`) without creating anything; the same key with another request is 422; while the first is still running, 409. Scoped to the API key; 1-255 printable ASCII characters.',
          schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
        },
      },
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API key from API_KEYS (`key=tenant` pairs), as `Authorization: Bearer <key>`; each key sees only its tenant’s batches and tasks. Without API_KEYS configured, authentication is off, every request belongs to tenant `default`, and the API listens on loopback only.',
        },
      },
    },
  };
}
