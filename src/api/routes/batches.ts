import { batchLinks, BatchListPage, BatchResource, ItemDetail, ItemsPage } from '../../contracts/batch.js';
import {
  BatchControlAction,
  ConcurrencyAccepted,
  ControlAccepted,
  RetryFailedResponse,
  SetConcurrencyRequest,
} from '../../contracts/batch-control.js';
import { ItemsQuery, ListBatchesQuery } from '../../contracts/batch-queries.js';
import { deliveryError } from '../../contracts/webhook.js';
import { BatchPath, ItemPath } from '../path-params.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

const CONTROL_SUMMARY: Record<BatchControlAction, string> = {
  cancel: 'Cancel a batch: running items finish, the rest are canceled',
  pause: 'Pause a batch: no new items start',
  resume: 'Resume a paused batch',
};

/** Batches: list, read, steer. Submitting is in batch-submit.ts; results and events are in batch-streams.ts. */
export const batchRoutes: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v1/batches',
    operationId: 'listBatches',
    summary: "The API key's batches, newest first",
    tag: 'Batches',
    request: { query: ListBatchesQuery },
    responses: { 200: json(BatchListPage, 'One page.') },
    errors: [503],
    handler: async ({ query }, { req, res, deps }) => {
      res.json((await deps.batches.list(req.tenant, query)) satisfies BatchListPage);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/batches/:id',
    operationId: 'getBatch',
    summary: "A batch's state, counts, rate and webhook deliveries",
    tag: 'Batches',
    request: { params: BatchPath },
    responses: { 200: json(BatchResource, 'The batch.') },
    errors: [404, 503],
    handler: async ({ params: { id } }, { req, res, deps: { batches } }) => {
      const stored = await batches.requireBatch(id, req.tenant);
      const { failures: _failures, ...summary } = await batches.summary(id, req.tenant);
      const resource: BatchResource = {
        ...summary,
        createdAt: stored.createdAt, // when it was submitted, as the list shows it (the workflow starts a moment later)
        ...(stored.metadata ? { metadata: stored.metadata } : {}),
        ...(stored.webhook
          ? {
              webhook: {
                url: stored.webhook.url,
                events: stored.webhook.events,
                failedDeliveries: (await batches.store.listFailedDeliveries(id)).map((f) => ({
                  ...f,
                  lastError: deliveryError(f.lastError),
                })),
              },
            }
          : {}),
        links: batchLinks(id),
      };
      res.json(resource);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/batches/:id/items',
    operationId: 'listItems',
    summary: 'One page of items in index order',
    tag: 'Batches',
    request: { params: BatchPath, query: ItemsQuery },
    responses: { 200: json(ItemsPage, 'One page.') },
    errors: [404, 503],
    handler: async ({ params: { id }, query }, { req, res, deps }) => {
      res.json(await deps.batches.items(id, req.tenant, query));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/batches/:id/items/:itemId',
    operationId: 'getItem',
    summary: 'One item by its id (its index when submitted without one)',
    tag: 'Batches',
    request: { params: ItemPath },
    responses: { 200: json(ItemDetail, 'The item, with its inputs.') },
    errors: [404, 503],
    handler: async ({ params: { id, itemId } }, { req, res, deps }) => {
      res.json(await deps.batches.item(id, req.tenant, itemId));
    },
  }),
  ...Object.values(BatchControlAction).map((action) =>
    defineRoute({
      method: 'post',
      path: `/v1/batches/:id/${action}`,
      operationId: `${action}Batch`,
      summary: CONTROL_SUMMARY[action],
      tag: 'Batches',
      request: { params: BatchPath },
      responses: { 202: json(ControlAccepted, 'The signal was delivered.') },
      errors: [404, 409, 503],
      handler: async ({ params: { id } }, { req, res, deps }) => {
        await deps.batches.control(id, req.tenant, action);
        res.status(202).json({ id, action, accepted: true } satisfies ControlAccepted);
      },
    }),
  ),
  defineRoute({
    method: 'post',
    path: '/v1/batches/:id/concurrency',
    operationId: 'setBatchConcurrency',
    summary: 'Change how many items of a running batch run at once',
    description:
      'Applies at once, to every shard: raising it starts more items; lowering it lets running items finish first.',
    tag: 'Batches',
    request: { params: BatchPath, body: { schema: SetConcurrencyRequest, what: 'concurrency' } },
    responses: { 202: json(ConcurrencyAccepted, 'The signal was delivered.') },
    errors: [404, 409, 503],
    handler: async ({ params: { id }, body }, { req, res, deps }) => {
      await deps.batches.setConcurrency(id, req.tenant, body.concurrency);
      res.status(202).json({ id, concurrency: body.concurrency, accepted: true } satisfies ConcurrencyAccepted);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/v1/batches/:id/retry-failed',
    operationId: 'retryFailed',
    summary: "Run a batch's failed items again",
    tag: 'Batches',
    request: { params: BatchPath },
    responses: { 200: json(RetryFailedResponse, 'How many items were queued again.') },
    errors: [404, 409, 503],
    handler: async ({ params: { id } }, { req, res, deps }) => {
      const { retried } = await deps.batches.retryFailed(id, req.tenant);
      res.json({ id, retried } satisfies RetryFailedResponse);
    },
  }),
];
