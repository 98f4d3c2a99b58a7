import { z } from 'zod';
import { BatchOptions } from '../../contracts/batch.js';
import { newHexId } from '../../contracts/ids.js';
import {
  BatchPath,
  CreateOpenAIBatchRequest,
  ListBatchesQuery,
  OPENAI_BASE,
  OpenAIBatch,
  OpenAIBatchList,
} from '../../contracts/openai.js';
import { ConflictError, InvalidRequestError, NotFoundError } from '../../errors.js';
import type { StoredBatch } from '../../stores/item-store.js';
import type { OpenAIBatchRecord } from '../../stores/openai-store.js';
import { prepareWebhook } from '../batch-submission.js';
import type { RouteDeps } from '../deps.js';
import { fingerprint, idempotent } from '../idempotency.js';
import { openAIBatchView } from '../openai-batch-view.js';
import { stageInputFile } from '../openai-input.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

const DEFAULT_OPTIONS = BatchOptions.parse({});

/**
 * OpenAI's Batch API over batchline batches: creating one validates its input file and starts a batchline batch of
 * the same id (`batchline_batch_id`), so SSE, webhooks' reading, retry-failed, pause and the rest apply to it too.
 */
export const openAIBatchRoutes: ApiRoute[] = [
  defineRoute({
    method: 'post',
    path: `${OPENAI_BASE}/batches`,
    operationId: 'openaiCreateBatch',
    summary: 'Create a batch from an uploaded file (OpenAI-compatible)',
    description:
      'Reads and checks every line of the input file before it answers: a file with problems gives a batch with status ' +
      '`failed` and its `errors` (line numbers and codes), and nothing runs; otherwise the batch is `in_progress`.',
    tag: 'OpenAI-compatible',
    createsWork: true,
    request: { body: { schema: CreateOpenAIBatchRequest, what: 'batch' } },
    responses: { 200: json(OpenAIBatch, 'The batch.') },
    errors: [503],
    handler: async ({ body, idempotencyKey }, { req, res, deps }) => {
      const work = { key: idempotencyKey, fingerprint: fingerprint(req, req.bodyHash ?? '') };
      await idempotent(req, res, deps.idempotency, work, async () => ({
        status: 200,
        body: await createBatch(deps, body, req.tenant),
      }));
    },
  }),
  defineRoute({
    method: 'get',
    path: `${OPENAI_BASE}/batches/:batchId`,
    operationId: 'openaiGetBatch',
    summary: 'A batch (OpenAI-compatible)',
    tag: 'OpenAI-compatible',
    request: { params: BatchPath },
    responses: { 200: json(OpenAIBatch, 'The batch.') },
    errors: [404, 503],
    handler: async ({ params: { batchId } }, { req, res, deps }) => {
      res.json(await openAIBatchView(deps, await requireRecord(deps, batchId, req.tenant)));
    },
  }),
  defineRoute({
    method: 'get',
    path: `${OPENAI_BASE}/batches`,
    operationId: 'openaiListBatches',
    summary: 'List batches (OpenAI-compatible)',
    description: 'Newest first; `after` is the last id of the page before.',
    tag: 'OpenAI-compatible',
    request: { query: ListBatchesQuery },
    responses: { 200: json(OpenAIBatchList, 'One page of batches.') },
    errors: [503],
    handler: async ({ query }, { req, res, deps }) => {
      const after = query.after?.slice('batch_'.length);
      const records = await deps.openai.listBatches(req.tenant, { after, limit: query.limit + 1 });
      const data = await Promise.all(records.slice(0, query.limit).map((r) => openAIBatchView(deps, r)));
      res.json({
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: records.length > query.limit,
      } satisfies z.infer<typeof OpenAIBatchList>);
    },
  }),
  defineRoute({
    method: 'post',
    path: `${OPENAI_BASE}/batches/:batchId/cancel`,
    operationId: 'openaiCancelBatch',
    summary: 'Cancel a batch (OpenAI-compatible)',
    description: 'Requests that finished stay in the output and error files; the rest are canceled.',
    tag: 'OpenAI-compatible',
    request: { params: BatchPath },
    responses: { 200: json(OpenAIBatch, 'The batch, `cancelling` until its workflow has stopped.') },
    errors: [404, 409, 503],
    handler: async ({ params: { batchId } }, { req, res, deps }) => {
      const record = await requireRecord(deps, batchId, req.tenant);
      if (record.errors) {
        throw new ConflictError(`batch '${batchId}' failed validation: there is nothing to cancel`);
      }
      const ended = await deps.batches.store.getEnd(record.id);
      if (!ended) {
        const asked = Date.now();
        await deps.batches.control(record.id, req.tenant, 'cancel');
        await deps.openai.markCancelling(record.id, asked);
      }
      res.json(await openAIBatchView(deps, (await deps.openai.getBatch(record.id, req.tenant))!));
    },
  }),
];

async function requireRecord(deps: RouteDeps, batchId: string, tenant: string): Promise<OpenAIBatchRecord> {
  const record = await deps.openai.getBatch(batchId.slice('batch_'.length), tenant);
  if (!record) throw new NotFoundError(`batch '${batchId}' not found`);
  return record;
}

/** Validates the input file into a staged batch and starts it, or records the batch as failed with its errors. */
async function createBatch(deps: RouteDeps, body: CreateOpenAIBatchRequest, tenant: string): Promise<OpenAIBatch> {
  const file = await deps.openai.getFile(body.input_file_id, tenant);
  if (!file) {
    const message = `no file '${body.input_file_id}'`;
    throw new InvalidRequestError(message, [{ path: ['input_file_id'], message }]);
  }
  const webhook = prepareWebhook(body.batchline_webhook, deps.config.WEBHOOK_ALLOWED_CIDRS);
  const id = newHexId();
  const createdAt = Date.now();
  const validation = await stageInputFile(deps, file.id, body.endpoint, id);
  const record: OpenAIBatchRecord = {
    id,
    tenant,
    createdAt,
    endpoint: body.endpoint,
    inputFileId: file.id,
    completionWindow: body.completion_window,
    metadata: body.metadata ?? null,
    model: validation.ok ? validation.staged.model.name : null,
    lines: validation.ok ? validation.staged.lines : 0,
    multiInput: validation.ok && validation.staged.multiInput,
    encodingFormat: validation.ok ? validation.staged.encodingFormat : 'float',
    ...(webhook && validation.ok ? { webhook: { url: webhook.url, events: webhook.events } } : {}),
  };
  if (!validation.ok) {
    const failed = { ...record, errors: validation.errors };
    await deps.openai.putBatch(failed);
    return openAIBatchView(deps, failed);
  }
  const { staged } = validation;
  const batch: StoredBatch = {
    id,
    model: staged.model.name,
    ...(staged.model.version !== undefined ? { version: staged.model.version } : {}),
    total: staged.items,
    options: DEFAULT_OPTIONS,
    ...(body.metadata ? { metadata: body.metadata } : {}),
    createdAt: new Date(createdAt).toISOString(),
    tenant,
    ...(webhook ? { webhook } : {}),
  };
  try {
    await deps.batches.store.commitBatch(batch);
  } catch (err) {
    await deps.batches.store.deleteBatch(id).catch(() => undefined);
    throw err;
  }
  // The record first: a batch that runs always has one (a record whose batch could not start is removed again).
  await deps.openai.putBatch(record);
  try {
    await deps.batches.start(batch); // removes the stored batch again if it cannot start
  } catch (err) {
    await deps.openai.removeBatch(id).catch(() => undefined);
    throw err;
  }
  deps.metrics.predictionRequests.inc({ source: 'batch' }, staged.items);
  const view = await openAIBatchView(deps, record);
  return webhook ? { ...view, batchline_webhook: { ...record.webhook!, secret: webhook.secret } } : view;
}
