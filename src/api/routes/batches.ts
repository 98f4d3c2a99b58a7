import { Router, type Request } from 'express';
import { z } from 'zod';
import { CreateBatchRequest, type CreateBatchResponse } from '../../contracts/batch.js';
import {
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  type ErrorDetail,
} from '../../errors.js';
import { checkItemInputs } from '../../runtime/input-validation.js';
import type { ModelRepository } from '../../runtime/model-repository.js';
import type { AppDeps } from '../app.js';
import { batchLinks } from '../../contracts/batch.js';
import { parseOrThrow } from '../middleware/validate.js';


/** Most per-item input problems reported in one 400; the rest are summarised. */
const MAX_REPORTED_ISSUES = 20;
const BATCH_ID = /^[0-9a-f]{20}$/;
const ItemsPageQuery = z
  .object({
    cursor: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
  })
  .strict();

export function batchRoutes({ batches: client, models, config }: AppDeps): Router {
  const maxBatchItems = config.MAX_BATCH_ITEMS;
  const router = Router();

  router.post('/v1/batches', async (req, res) => {
    requireJson(req);
    const body = parseOrThrow(CreateBatchRequest, req.body, 'batch');
    if (body.items.length > maxBatchItems) {
      throw new PayloadTooLargeError(`a batch holds at most ${maxBatchItems} items; this one has ${body.items.length}`);
    }
    const model = await models.resolve(body.model, body.version).catch((err: unknown) => {
      if (err instanceof NotFoundError) throw new InvalidRequestError(err.message, [{ path: ['model'], message: err.message }]);
      throw err;
    });
    const issues: ErrorDetail[] = [];
    let bad = 0;
    body.items.forEach((item, i) => {
      try {
        checkItemInputs(model.config, item.inputs);
      } catch (err) {
        if (!(err instanceof InvalidRequestError)) throw err;
        bad++;
        for (const d of err.details ?? []) {
          if (issues.length < MAX_REPORTED_ISSUES) issues.push({ path: ['items', i, ...d.path], message: d.message });
        }
      }
    });
    if (bad > 0) {
      const first = issues[0]!;
      throw new InvalidRequestError(`${bad} item(s) do not fit model '${model.name}' v${model.version}: items[${first.path[1]}]: ${first.message}`, issues);
    }
    const id = await client.submit(body);
    const response: CreateBatchResponse = { id, status: 'running', total: body.items.length, counts: { pending: body.items.length, running: 0, succeeded: 0, failed: 0, canceled: 0 }, links: batchLinks(id) };
    res.status(202).location(response.links.self).json(response);
  });

  router.get('/v1/batches/:id', async (req, res) => {
    const id = req.params.id;
    if (!BATCH_ID.test(id)) throw new NotFoundError(`batch '${id}' not found`);
    const page = parseOrThrow(ItemsPageQuery, req.query, 'query');
    res.json(await client.get(id, page));
  });

  return router;
}

function requireJson(req: Request): void {
  if (!req.is('application/json')) {
    throw new UnsupportedMediaTypeError(`Content-Type must be application/json (got ${req.header('content-type') ?? 'none'})`);
  }
}
