import { Router, type Request } from 'express';
import {
  PredictAsyncRequest,
  PredictRequest,
  taskStatusUrl,
  type PredictResponse,
  type TaskAcceptedResponse,
  type TaskSource,
} from '../../contracts/predict.js';
import { InvalidRequestError } from '../../errors.js';
import { checkItemInputs } from '../../runtime/input-validation.js';
import type { RouteDeps } from '../app.js';
import { fingerprint, idempotent } from '../idempotency.js';
import { parseOrThrow } from '../middleware/validate.js';
import { awaitTask, requireJson, startTaskOnce } from '../online-tasks.js';
import { resolveRequestedModel } from '../requested-model.js';

/**
 * Online predictions of one item, on the interactive task queue:
 * - `POST /v1/predict`: waits up to `timeoutMs` and answers with the result, or 504 naming the task, which goes on.
 * - `POST /v1/predict/async`: 202 with the task id and where to read it.
 * - `GET /v1/tasks/:taskId`: the task's state and result, for its tenant only.
 * Inputs are checked against the model's signature before anything starts (400 with field paths).
 */
export function predictRoutes(deps: RouteDeps): Router {
  const { predict, models, idempotency, metrics, config } = deps;
  const router = Router();
  const limit = deps.workLimit;

  /** Validates a body's model and inputs, then starts its task for the caller's tenant. */
  const startFor = async (req: Request, body: PredictAsyncRequest, source: TaskSource): Promise<string> => {
    const model = await resolveRequestedModel(models, body.model, body.version);
    checkItemInputs(model.config, body.inputs);
    metrics.predictionRequests.inc({ source });
    return predict.start(
      { model: body.model, version: body.version, items: [body.inputs] },
      { tenant: req.tenant, source },
    );
  };

  router.post('/v1/predict', limit, async (req, res) => {
    requireJson(req);
    const body = parseOrThrow(PredictRequest, req.body, 'prediction');
    const timeoutMs = body.timeoutMs ?? Math.min(config.PREDICT_TIMEOUT_MS, config.PREDICT_MAX_TIMEOUT_MS);
    if (timeoutMs > config.PREDICT_MAX_TIMEOUT_MS) {
      const message = `at most ${config.PREDICT_MAX_TIMEOUT_MS} ms (PREDICT_MAX_TIMEOUT_MS); use /v1/predict/async for longer work`;
      throw new InvalidRequestError(`invalid prediction: timeoutMs: ${message}`, [{ path: ['timeoutMs'], message }]);
    }
    const { timeoutMs: _timeoutMs, ...request } = body;
    const { taskId, replayed } = await startTaskOnce(req, idempotency, () => startFor(req, request, 'sync'));
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    const [result] = await awaitTask(predict, taskId, timeoutMs, res, () => metrics.predictionTimeouts.inc());
    const response: PredictResponse = { taskId, status: 'succeeded', result: result! };
    res.json(response);
  });

  router.post('/v1/predict/async', limit, async (req, res) => {
    requireJson(req);
    const body = parseOrThrow(PredictAsyncRequest, req.body, 'prediction');
    await idempotent(req, res, idempotency, fingerprint(req, req.bodyHash!), async () => {
      const taskId = await startFor(req, body, 'async');
      const response: TaskAcceptedResponse = { taskId, status: 'running', statusUrl: taskStatusUrl(taskId) };
      return { status: 202, body: response, location: response.statusUrl };
    });
  });

  router.get('/v1/tasks/:taskId', async (req, res) => {
    res.json(await predict.describe(req.params.taskId, req.tenant));
  });

  return router;
}
