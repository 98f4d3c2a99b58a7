import { Router, type Request } from 'express';
import { z } from 'zod';
import { newBatchId } from '../../client/batch-client.js';
import {
  BatchOptions,
  batchLinks,
  CreateBatchRequest,
  type BatchResource,
  type CreateBatchResponse,
} from '../../contracts/batch.js';
import { WebhookRegistration, type StoredWebhook } from '../../contracts/webhook.js';
import { InvalidRequestError, NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../../errors.js';
import type { StoredBatch } from '../../stores/item-store.js';
import type { RouteDeps } from '../app.js';
import { checkBatchItems, ItemIssues, prepareWebhook } from '../batch-submission.js';
import { resolveRequestedModel } from '../requested-model.js';
import { fingerprint, idempotent, type CreatedResponse } from '../idempotency.js';
import { parseOrThrow } from '../middleware/validate.js';
import { readNdjsonItems } from '../ndjson-items.js';

export const BATCH_ID = /^[0-9a-f]{20}$/;

const ItemStatusFilter = z.enum(['pending', 'running', 'succeeded', 'failed', 'canceled']);

export const ListBatchesQuery = z
  .object({
    status: z.enum(['running', 'completed', 'canceled', 'failed']).optional(),
    model: z.string().min(1).max(128).optional(),
    cursor: z.string().max(4096).regex(/^[\w-]*$/, 'not a cursor from a previous page').optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
  })
  .strict();

export const ItemsQuery = z
  .object({
    status: ItemStatusFilter.optional(),
    cursor: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

/** Model, version, webhook and options of an NDJSON submission, from query parameters (or `Batchline-*` headers). */
export const NdjsonSubmitParams = z
  .object({
    model: z.string().min(1).max(128),
    version: z.coerce.number().int().positive().optional(),
    webhook: z.string().max(2048).optional(),
    webhookEvents: z.string().regex(/^(item|batch)(,(item|batch))?$/, "expected 'item', 'batch' or 'item,batch'").optional(),
    ...Object.fromEntries(Object.entries(BatchOptions.shape).map(([k, field]) => [k, queryField(field)])),
  })
  .strict();

/** A batch option as a query parameter: words stay strings (zod's enum check follows); numbers are parsed. */
function queryField(field: z.ZodTypeAny): z.ZodTypeAny {
  const inner = field instanceof z.ZodDefault ? field.unwrap() : field;
  return inner instanceof z.ZodEnum ? z.string().optional() : z.coerce.number().optional();
}

const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/ndjson'];

/** Batches: submit (JSON or streamed NDJSON), list, read, steer. Results and events are in batch-streams.ts. */
export function batchRoutes(deps: RouteDeps): Router {
  const { batches, models, config, idempotency, metrics } = deps;
  const router = Router();

  router.post('/v1/batches', deps.workLimit, async (req, res) => {
    if (req.is(NDJSON_TYPES)) return submitNdjson(req, res);
    if (!req.is('application/json')) {
      throw new UnsupportedMediaTypeError(
        `Content-Type must be application/json or application/x-ndjson (got ${req.header('content-type') ?? 'none'})`,
      );
    }
    const body = parseOrThrow(CreateBatchRequest, req.body, 'batch');
    if (body.items.length > config.MAX_BATCH_ITEMS) {
      throw new PayloadTooLargeError(`a batch holds at most ${config.MAX_BATCH_ITEMS} items (MAX_BATCH_ITEMS); this one has ${body.items.length}`);
    }
    const model = await resolveRequestedModel(models, body.model, body.version);
    checkBatchItems(model, body);
    const webhook = prepareWebhook(body.webhook, config.WEBHOOK_ALLOWED_CIDRS);
    await idempotent(req, res, idempotency, fingerprint(req, req.bodyHash ?? ''), async () => {
      const id = await batches.submit(body, { tenant: req.tenant, ...(webhook ? { webhook } : {}) });
      metrics.predictionRequests.inc({ source: 'batch' }, body.items.length);
      return created(id, body.items.length, webhook);
    });
  });

  /** NDJSON: streamed line by line into a staged batch that becomes visible only when its workflow starts. */
  const submitNdjson = async (req: Request, res: import('express').Response) => {
    const params = parseOrThrow(NdjsonSubmitParams, ndjsonParams(req), 'query parameters');
    const { model: name, version, webhook: url, webhookEvents, ...optionFields } = params;
    const options = parseOrThrow(BatchOptions, optionFields, 'options');
    const webhook = url
      ? prepareWebhook(
          parseOrThrow(WebhookRegistration, { url, ...(webhookEvents ? { events: webhookEvents.split(',') } : {}) }, 'webhook'),
          config.WEBHOOK_ALLOWED_CIDRS,
        )
      : undefined;
    const model = await resolveRequestedModel(models, name, version);
    const id = newBatchId();
    const issues = new ItemIssues();
    let committed = false;
    try {
      const { total, bodyHash } = await readNdjsonItems(req, {
        model,
        issues,
        maxBytes: config.MAX_BODY_BYTES,
        maxItems: config.MAX_BATCH_ITEMS,
        append: (items, from) => deps.batches.store.appendItemsInBackground(id, from, items),
      });
      issues.throwIfAny(`line(s) of the NDJSON body; the batch was`);
      if (total === 0) throw new InvalidRequestError('the NDJSON body has no items', [{ path: ['line', 1], message: 'expected at least one item' }]);
      await idempotent(req, res, idempotency, fingerprint(req, bodyHash), async () => {
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
        deps.batches.store.commitBatch(batch);
        committed = true;
        await batches.start(batch);
        metrics.predictionRequests.inc({ source: 'batch' }, total);
        return created(id, total, webhook);
      });
    } catch (err) {
      if (err instanceof PayloadTooLargeError) res.setHeader('Connection', 'close'); // do not read the rest
      throw err;
    } finally {
      if (!committed) deps.batches.store.deleteBatch(id);
    }
  };

  router.get('/v1/batches', async (req, res) => {
    const query = parseOrThrow(ListBatchesQuery, req.query, 'query');
    res.json(await batches.list(req.tenant, query));
  });

  router.get('/v1/batches/:id', async (req, res) => {
    const id = batchIdParam(req);
    const stored = batches.requireBatch(id, req.tenant);
    const summary = await batches.summary(id, req.tenant);
    const { failures: _failures, ...rest } = summary;
    const resource: BatchResource = {
      ...rest,
      createdAt: stored.createdAt, // when it was submitted, as the list shows it (the workflow starts a moment later)
      ...(stored.metadata ? { metadata: stored.metadata } : {}),
      ...(stored.webhook
        ? { webhook: { url: stored.webhook.url, events: stored.webhook.events, failedDeliveries: batches.store.listFailedDeliveries(id) } }
        : {}),
      links: batchLinks(id),
    };
    res.json(resource);
  });

  router.get('/v1/batches/:id/items', async (req, res) => {
    const id = batchIdParam(req);
    const query = parseOrThrow(ItemsQuery, req.query, 'query');
    res.json(await batches.items(id, req.tenant, query));
  });

  router.get('/v1/batches/:id/items/:itemId', async (req, res) => {
    const id = batchIdParam(req);
    res.json(await batches.item(id, req.tenant, String(req.params.itemId)));
  });

  for (const action of ['cancel', 'pause', 'resume'] as const) {
    router.post(`/v1/batches/:id/${action}`, async (req, res) => {
      const id = batchIdParam(req);
      await batches.control(id, req.tenant, action);
      res.status(202).json({ id, action, accepted: true });
    });
  }

  router.post('/v1/batches/:id/retry-failed', async (req, res) => {
    const id = batchIdParam(req);
    const { retried } = await batches.retryFailed(id, req.tenant);
    res.json({ id, retried });
  });

  return router;
}

/** The 202 of a submission (also what an idempotent replay answers). */
function created(id: string, total: number, webhook: StoredWebhook | undefined): CreatedResponse {
  const body: CreateBatchResponse = {
    id,
    status: 'running',
    total,
    counts: { pending: total, running: 0, succeeded: 0, failed: 0, canceled: 0 },
    links: batchLinks(id),
    ...(webhook ? { webhook } : {}),
  };
  return { status: 202, body, location: body.links.self };
}

/** A batch id from the path; a malformed one cannot exist, so it is 404 like any unknown id. */
export function batchIdParam(req: Request): string {
  const id = String(req.params.id);
  if (!BATCH_ID.test(id)) throw new NotFoundError(`batch '${id}' not found`);
  return id;
}

/** Query parameters, falling back to `Batchline-Model`, `Batchline-Version` and `Batchline-Options` (JSON) headers. */
function ndjsonParams(req: Request): Record<string, unknown> {
  const params: Record<string, unknown> = { ...(req.query as Record<string, unknown>) };
  if (params.model === undefined && req.header('batchline-model')) params.model = req.header('batchline-model');
  if (params.version === undefined && req.header('batchline-version')) params.version = req.header('batchline-version');
  const options = req.header('batchline-options');
  if (options) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(options);
    } catch {
      throw new InvalidRequestError('the Batchline-Options header is not valid JSON', [{ path: ['Batchline-Options'], message: 'not valid JSON' }]);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new InvalidRequestError('the Batchline-Options header must be a JSON object', [{ path: ['Batchline-Options'], message: 'expected an object' }]);
    }
    for (const [k, v] of Object.entries(parsed)) if (params[k] === undefined) params[k] = v;
  }
  return params;
}
