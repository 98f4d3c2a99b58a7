import type { Request, Response } from 'express';
import { newHexId } from '../../contracts/ids.js';
import {
  BatchItem,
  BatchOptions,
  batchLinks,
  CreateBatchRequest,
  CreateBatchResponse,
  itemCounts,
} from '../../contracts/batch.js';
import { NdjsonSubmitHeaders, NdjsonSubmitParams } from '../../contracts/batch-queries.js';
import { WebhookRegistration, type StoredWebhook } from '../../contracts/webhook.js';
import { InvalidRequestError, PayloadTooLargeError } from '../../errors.js';
import { itemsPerBlock, type StoredBatch } from '../../stores/item-store.js';
import { checkBatchItems, ItemIssues, prepareWebhook } from '../batch-submission.js';
import type { RouteDeps } from '../deps.js';
import { fingerprint, idempotent, type CreatedResponse } from '../idempotency.js';
import { parseOrThrow } from '../middleware/validate.js';
import { readNdjsonItems } from '../ndjson-items.js';
import { resolveRequestedModel } from '../requested-model.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/ndjson'];

/**
 * `POST /v1/batches`: a JSON CreateBatchRequest, or an NDJSON body streamed line by line into a staged batch
 * that becomes visible only when its workflow starts. Every item is checked against the model first.
 */
export const batchSubmitRoutes: ApiRoute[] = [
  defineRoute({
    method: 'post',
    path: '/v1/batches',
    operationId: 'createBatch',
    summary: 'Submit a batch',
    description:
      'A JSON `CreateBatchRequest`, or an NDJSON body of one `BatchItem` per line, streamed into the item store (model, version, webhook and options then come as query parameters or `Batchline-*` headers). ' +
      'Every item is checked against the model before anything is queued.',
    tag: 'Batches',
    createsWork: true,
    request: {
      query: NdjsonSubmitParams.partial(),
      headers: NdjsonSubmitHeaders,
      body: { schema: CreateBatchRequest, what: 'batch', description: 'JSON: a CreateBatchRequest.' },
      stream: {
        mediaTypes: NDJSON_TYPES,
        line: BatchItem,
        description: 'NDJSON: one BatchItem per line (the schema describes one line).',
      },
    },
    responses: { 202: json(CreateBatchResponse, 'Accepted: the batch runs.', ['Location']) },
    errors: [503],
    handler: async ({ body, query, headers, idempotencyKey }, { req, res, deps }) => {
      if (body === undefined) return submitNdjson(ndjsonParams(query, headers), idempotencyKey, req, res, deps);
      const ndjsonOnly = [
        ...Object.entries(query)
          .filter(([, v]) => v !== undefined)
          .map(([k]) => [k, `query parameter '${k}'`]),
        ...Object.keys(NdjsonSubmitHeaders.shape)
          .filter((k) => headers[k as keyof typeof headers] !== undefined)
          .map((k) => [k, `header '${k}'`]),
      ];
      if (ndjsonOnly.length > 0) {
        // A JSON batch carries its model, version, webhook and options in the body; silently ignoring them here
        // would run the batch with settings the client did not ask for.
        throw new InvalidRequestError(
          `${ndjsonOnly.map(([, what]) => what).join(', ')}: for NDJSON bodies only; a JSON batch sets these in its body`,
          ndjsonOnly.map(([k, what]) => ({ path: [k!], message: `${what} applies to NDJSON bodies only` })),
        );
      }
      const { batches, models, config, metrics } = deps;
      if (body.items.length > config.MAX_BATCH_ITEMS) {
        throw new PayloadTooLargeError(
          `a batch holds at most ${config.MAX_BATCH_ITEMS} items (MAX_BATCH_ITEMS); this one has ${body.items.length}`,
        );
      }
      const model = await resolveRequestedModel(models, body.model, body.version);
      checkBatchItems(model, body);
      const webhook = prepareWebhook(body.webhook, config.WEBHOOK_ALLOWED_CIDRS);
      const work = { key: idempotencyKey, fingerprint: fingerprint(req, req.bodyHash ?? '') };
      await idempotent(req, res, deps.idempotency, work, async () => {
        const id = await batches.submit(body, { tenant: req.tenant, ...(webhook ? { webhook } : {}) });
        metrics.predictionRequests.inc({ source: 'batch' }, body.items.length);
        return created(id, body.items.length, webhook);
      });
    },
  }),
];

/** An NDJSON submission: streamed into the item store, visible once its workflow starts; nothing left on failure. */
async function submitNdjson(
  params: NdjsonSubmitParams,
  idempotencyKey: string | undefined,
  req: Request,
  res: Response,
  deps: RouteDeps,
): Promise<void> {
  const { batches, models, config, metrics } = deps;
  const { model: name, version, webhook: url, webhookEvents, ...optionFields } = params;
  const options = parseOrThrow(BatchOptions, optionFields, 'options');
  const registration = url
    ? parseOrThrow(
        WebhookRegistration,
        { url, ...(webhookEvents ? { events: webhookEvents.split(',') } : {}) },
        'webhook',
      )
    : undefined;
  const webhook = prepareWebhook(registration, config.WEBHOOK_ALLOWED_CIDRS);
  const model = await resolveRequestedModel(models, name, version);
  const id = newHexId();
  const issues = new ItemIssues();
  let committed = false;
  try {
    const { total, bodyHash } = await readNdjsonItems(req, {
      model,
      issues,
      maxBytes: config.MAX_BODY_BYTES,
      maxItems: config.MAX_BATCH_ITEMS,
      append: (rows, from) => batches.store.appendRows(id, from, rows, itemsPerBlock(options)),
      appendEvery: batches.store.appendSize,
      hashBody: idempotencyKey !== undefined,
    });
    issues.throwIfAny(`line(s) of the NDJSON body; the batch was`);
    if (total === 0) {
      throw new InvalidRequestError('the NDJSON body has no items', [
        { path: ['line', 1], message: 'expected at least one item' },
      ]);
    }
    await idempotent(
      req,
      res,
      deps.idempotency,
      { key: idempotencyKey, fingerprint: fingerprint(req, bodyHash ?? '') },
      async () => {
        const batch: StoredBatch = {
          id,
          model: name,
          ...(version !== undefined ? { version } : {}),
          total,
          options,
          createdAt: new Date().toISOString(),
          tenant: req.tenant,
          ...(webhook ? { webhook } : {}),
        };
        await batches.store.commitBatch(batch);
        committed = true;
        await batches.start(batch);
        metrics.predictionRequests.inc({ source: 'batch' }, total);
        return created(id, total, webhook);
      },
    );
  } catch (err) {
    if (err instanceof PayloadTooLargeError) res.setHeader('Connection', 'close'); // do not read the rest
    throw err;
  } finally {
    // A staged upload left behind (the store is unreachable) is removed by retention's sweep of staged uploads.
    if (!committed) await batches.store.deleteBatch(id).catch(() => undefined);
  }
}

/**
 * Model, version and options of an NDJSON submission: query parameters first, then the `Batchline-Model`,
 * `Batchline-Version` and `Batchline-Options` (a JSON object) headers, checked together.
 */
function ndjsonParams(query: Partial<NdjsonSubmitParams>, headers: NdjsonSubmitHeaders): NdjsonSubmitParams {
  const params: Record<string, unknown> = { ...query };
  if (params.model === undefined && headers['Batchline-Model']) params.model = headers['Batchline-Model'];
  if (params.version === undefined && headers['Batchline-Version']) params.version = headers['Batchline-Version'];
  const options = headers['Batchline-Options'];
  if (options) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(options);
    } catch {
      throw new InvalidRequestError('the Batchline-Options header is not valid JSON', [
        { path: ['Batchline-Options'], message: 'not valid JSON' },
      ]);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new InvalidRequestError('the Batchline-Options header must be a JSON object', [
        { path: ['Batchline-Options'], message: 'expected an object' },
      ]);
    }
    for (const [k, v] of Object.entries(parsed)) if (params[k] === undefined) params[k] = v;
  }
  return parseOrThrow(NdjsonSubmitParams, params, 'query parameters');
}

/** The 202 of a submission (also what an idempotent replay answers). */
function created(id: string, total: number, webhook: StoredWebhook | undefined): CreatedResponse {
  const body: CreateBatchResponse = {
    id,
    status: 'running',
    total,
    counts: itemCounts(total),
    links: batchLinks(id),
    ...(webhook ? { webhook } : {}),
  };
  return { status: 202, body, location: body.links.self };
}
