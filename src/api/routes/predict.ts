import type { Request } from 'express';
import {
  PredictAsyncRequest,
  PredictRequest,
  PredictResponse,
  TaskAcceptedResponse,
  TaskResource,
  taskStatusUrl,
  type TaskSource,
} from '../../contracts/predict.js';
import { InvalidRequestError } from '../../errors.js';
import { checkItemInputs } from '../../runtime/input-validation.js';
import type { RouteDeps } from '../deps.js';
import { fingerprint, idempotent } from '../idempotency.js';
import { awaitTask, startTaskOnce } from '../online-tasks.js';
import { TaskPath } from '../path-params.js';
import { resolveRequestedModel } from '../requested-model.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

/**
 * Online predictions of one item, on the interactive task queue. Inputs are checked against the model's
 * signature before anything starts (400 with field paths); a task is visible to its tenant only.
 */
export const predictRoutes: ApiRoute[] = [
  defineRoute({
    method: 'post',
    path: '/v1/predict',
    operationId: 'predict',
    summary: 'Predict one item and wait for the result',
    description:
      'Waits up to `timeoutMs` (default PREDICT_TIMEOUT_MS, at most PREDICT_MAX_TIMEOUT_MS); past it, 504 names the task, which goes on.',
    tag: 'Predictions',
    createsWork: true,
    request: { body: { schema: PredictRequest, what: 'prediction' } },
    responses: { 200: json(PredictResponse, 'The result.') },
    errors: [503, 504],
    handler: async ({ body, idempotencyKey }, { req, res, deps }) => {
      const { config, metrics, predict } = deps;
      const timeoutMs = body.timeoutMs ?? Math.min(config.PREDICT_TIMEOUT_MS, config.PREDICT_MAX_TIMEOUT_MS);
      if (timeoutMs > config.PREDICT_MAX_TIMEOUT_MS) {
        const message = `at most ${config.PREDICT_MAX_TIMEOUT_MS} ms (PREDICT_MAX_TIMEOUT_MS); use /v1/predict/async for longer work`;
        throw new InvalidRequestError(`invalid prediction: timeoutMs: ${message}`, [{ path: ['timeoutMs'], message }]);
      }
      const { timeoutMs: _timeoutMs, ...request } = body;
      const work = { key: idempotencyKey, fingerprint: fingerprint(req, req.bodyHash!) };
      const { taskId, replayed } = await startTaskOnce(deps.idempotency, req.apiKey, work, () =>
        startTask(req, request, 'sync', deps),
      );
      if (replayed) res.setHeader('Idempotent-Replayed', 'true');
      const [result] = await awaitTask(predict, taskId, timeoutMs, res, () => metrics.predictionTimeouts.inc());
      res.json({ taskId, status: 'succeeded', result: result! } satisfies PredictResponse);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/v1/predict/async',
    operationId: 'predictAsync',
    summary: 'Start a prediction of one item',
    tag: 'Predictions',
    createsWork: true,
    request: { body: { schema: PredictAsyncRequest, what: 'prediction' } },
    responses: { 202: json(TaskAcceptedResponse, 'The task runs; poll `statusUrl`.', ['Location']) },
    errors: [503],
    handler: async ({ body, idempotencyKey }, { req, res, deps }) => {
      const work = { key: idempotencyKey, fingerprint: fingerprint(req, req.bodyHash!) };
      await idempotent(req, res, deps.idempotency, work, async () => {
        const taskId = await startTask(req, body, 'async', deps);
        const response: TaskAcceptedResponse = { taskId, status: 'running', statusUrl: taskStatusUrl(taskId) };
        return { status: 202, body: response, location: response.statusUrl };
      });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/tasks/:taskId',
    operationId: 'getTask',
    summary: "An online task's state and result",
    tag: 'Predictions',
    request: { params: TaskPath },
    responses: { 200: json(TaskResource, 'The task.') },
    errors: [404, 503],
    handler: async ({ params: { taskId } }, { req, res, deps }) => {
      res.json((await deps.predict.describe(taskId, req.tenant)) satisfies TaskResource);
    },
  }),
];

/** Validates a body's model and inputs, then starts its task for the caller's tenant. */
async function startTask(
  req: Request,
  body: PredictAsyncRequest,
  source: TaskSource,
  { models, metrics, predict }: RouteDeps,
): Promise<string> {
  const model = await resolveRequestedModel(models, body.model, body.version);
  checkItemInputs(model.config, body.inputs);
  metrics.predictionRequests.inc({ source });
  return predict.start(
    { model: body.model, version: body.version, items: [body.inputs] },
    { tenant: req.tenant, source },
  );
}
