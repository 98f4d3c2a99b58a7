import { z } from 'zod';
import { HEX_ID } from '../contracts/ids.js';
import { MAX_ITEM_ID_LENGTH, MODEL_NAME, MODEL_VERSION } from '../contracts/limits.js';

// The path parameters of the routes. A value that fails its schema names nothing that could exist, so the
// route answers 404 with the schema's message, as for an unknown one (route.ts `badRequestParams` says where a
// malformed value is the request's fault instead).

const notFound = (what: string) => ({
  error: (issue: { input?: unknown }) => `${what} '${String(issue.input)}' not found`,
});

const BatchIdParam = z
  .string()
  .regex(HEX_ID, notFound('batch'))
  .meta({ description: 'A batch id (20 hex digits); anything else is 404.' });

/** `/v1/batches/:id` and everything under it. */
export const BatchPath = z.object({ id: BatchIdParam });

/** `/v1/batches/:id/items/:itemId`: an item id as submitted, or its index when it was submitted without one. */
export const ItemPath = BatchPath.extend({ itemId: z.string().min(1).max(MAX_ITEM_ID_LENGTH, notFound('item')) });

/** `/v1/tasks/:taskId`. */
export const TaskPath = z.object({ taskId: z.string().regex(HEX_ID, notFound('task')) });

/** `/v1/models/:name`, `/v2/models/:name`. */
export const ModelPath = z.object({ name: z.string().regex(MODEL_NAME, notFound('model')) });

/** `/v2/models/:name/versions/:version`: a malformed version is the request's fault (400), as the protocol has it. */
export const ModelVersionPath = ModelPath.extend({
  version: z
    .string()
    .regex(MODEL_VERSION, {
      error: (issue) => `model version must be a positive integer, got '${String(issue.input)}'`,
    })
    .transform(Number),
});
