import type { Request } from 'express';
import {
  PredictAsyncRequest,
  PredictRequest,
  PredictResponse,
  TaskAcceptedResponse,
  TaskList,
  TaskListQuery,
  TaskResource,
  taskStatusUrl,
  type TaskSource,
} from '../../contracts/predict.js';
import type { TaskDeadline } from '../../client/predict-client.js';
import { InvalidRequestError } from '../../errors.js';
import { checkItemInputs } from '../../runtime/input-validation.js';
import type { RouteDeps } from '../deps.js';
import { fingerprint, idempotent } from '../idempotency.js';
import { defaultSyncTimeoutMs, runSyncTask } from '../online-tasks.js';
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
      'Waits up to `timeoutMs` (default PREDICT_TIMEOUT_MS, at most PREDICT_MAX_TIMEOUT_MS); past it, 504 names the task, which goes on ' +
      '(or, with `onTimeout: cancel`, is dropped). Answers 503 with Retry-After at once, starting nothing, when online predictions ' +
      'are overloaded (admission control: PREDICT_MAX_QUEUE_AGE_MS, PREDICT_MAX_IN_FLIGHT).',
    tag: 'Predictions',
    createsWork: true,
    request: { body: { schema: PredictRequest, what: 'prediction' } },
    responses: { 200: json(PredictResponse, 'The result.') },
    errors: [503, 504],
    handler: async ({ body, idempotencyKey }, { req, res, deps }) => {
      const { config } = deps;
      const timeoutMs = body.timeoutMs ?? defaultSyncTimeoutMs(config);
      if (timeoutMs > config.PREDICT_MAX_TIMEOUT_MS) {
        const message = `at most ${config.PREDICT_MAX_TIMEOUT_MS} ms (PREDICT_MAX_TIMEOUT_MS); use /v1/predict/async for longer work`;
        throw new InvalidRequestError(`invalid prediction: timeoutMs: ${message}`, [{ path: ['timeoutMs'], message }]);
      }
      const { timeoutMs: _timeoutMs, onTimeout, ...request } = body;
      const { taskId, results } = await runSyncTask(deps, req, res, {
        source: 'sync',
        timeoutMs,
        onTimeout,
        work: { key: idempotencyKey, fingerprint: fingerprint(req, req.bodyHash!) },
        check: () => checkTask(request, deps),
        start: (deadline) => startTask(req, request, 'sync', deps, deadline),
      });
      res.json({ taskId, status: 'succeeded', result: results[0]! } satisfies PredictResponse);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/v1/predict/async',
    operationId: 'predictAsync',
    summary: 'Start a prediction of one item',
    description: 'Answers 503 with Retry-After while the interactive task queue holds PREDICT_MAX_BACKLOG tasks.',
    tag: 'Predictions',
    createsWork: true,
    request: { body: { schema: PredictAsyncRequest, what: 'prediction' } },
    responses: { 202: json(TaskAcceptedResponse, 'The task runs; poll `statusUrl`.', ['Location']) },
    errors: [503],
    handler: async ({ body, idempotencyKey }, { req, res, deps }) => {
      const work = { key: idempotencyKey, fingerprint: fingerprint(req, req.bodyHash!) };
      await idempotent(req, res, deps.idempotency, work, async () => {
        await checkTask(body, deps);
        deps.admission.admitAsync('async');
        const taskId = await startTask(req, body, 'async', deps);
        const response: TaskAcceptedResponse = { taskId, status: 'running', statusUrl: taskStatusUrl(taskId) };
        return { status: 202, body: response, location: response.statusUrl };
      });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/tasks',
    operationId: 'listTasks',
    summary: 'Recent online tasks',
    description:
      "The tenant's most recent online tasks (predict, async, KServe, OpenAI embeddings), running ones first, then by when they ended (as Temporal lists them), without results.",
    tag: 'Predictions',
    request: { query: TaskListQuery },
    responses: { 200: json(TaskList, 'The tasks.') },
    errors: [503],
    handler: async ({ query }, { req, res, deps }) => {
      res.json({ tasks: await deps.predict.list(req.tenant, query.limit) } satisfies TaskList);
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

/** Validates a body's model and inputs against the model's signature (400 or 404 before anything starts). */
async function checkTask(body: PredictAsyncRequest, { models }: RouteDeps): Promise<void> {
  const model = await resolveRequestedModel(models, body.model, body.version);
  checkItemInputs(model.config, body.inputs);
}

/** Starts a checked body's task for the caller's tenant (with a sync caller's deadline). */
async function startTask(
  req: Request,
  body: PredictAsyncRequest,
  source: TaskSource,
  { metrics, predict }: RouteDeps,
  deadline?: TaskDeadline,
): Promise<string> {
  metrics.predictionRequests.inc({ source });
  return predict.start(
    { model: body.model, version: body.version, items: [body.inputs] },
    { tenant: req.tenant, source },
    deadline,
  );
}
