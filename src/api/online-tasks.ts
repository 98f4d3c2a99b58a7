import type { Request, RequestHandler, Response } from 'express';
import type { ItemResult } from '../contracts/batch.js';
import { taskStatusUrl, type TaskAcceptedResponse } from '../contracts/predict.js';
import type { PredictClient } from '../client/predict-client.js';
import {
  ConflictError,
  InvalidRequestError,
  NotFoundError,
  TimeoutError,
  UnprocessableError,
  UnsupportedMediaTypeError,
} from '../errors.js';
import type { ModelRepository, ResolvedModel } from '../runtime/model-repository.js';
import type { SqliteIdempotencyStore } from '../stores/idempotency-store.js';
import type { AppDeps } from './app.js';
import { fingerprint, type CreatedResponse } from './idempotency.js';
import { rateLimit } from './middleware/rate-limit.js';

// What the online endpoints (/v1/predict, /v2/models/:name/infer) share: one rate limit, starting a task once
// per Idempotency-Key, and waiting for its result up to a deadline.

const limiters = new WeakMap<AppDeps, RequestHandler>();

/** The rate limit of requests that create online tasks: one bucket per API key across /v1 and /v2 in one app. */
export function onlineRateLimit(deps: AppDeps): RequestHandler {
  let limiter = limiters.get(deps);
  if (!limiter) {
    limiter = rateLimit(deps.config.RATE_LIMIT_PER_MINUTE);
    limiters.set(deps, limiter);
  }
  return limiter;
}

export function requireJson(req: Request): void {
  if (!req.is('application/json')) {
    throw new UnsupportedMediaTypeError(
      `Content-Type must be application/json (got ${req.header('content-type') ?? 'none'})`,
    );
  }
}

/** The model a /v1 body names; an unknown model or version is the body's fault: 400 at `['model']`. */
export async function resolveRequestedModel(
  models: ModelRepository,
  name: string,
  version?: number,
): Promise<ResolvedModel> {
  return models.resolve(name, version).catch((err: unknown) => {
    if (err instanceof NotFoundError)
      throw new InvalidRequestError(err.message, [{ path: ['model'], message: err.message }]);
    throw err;
  });
}

const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Starts a task at most once per `Idempotency-Key` and API key, for endpoints that answer with the task's
 * result rather than with the task. What is remembered is the task (as the 202 of the async endpoint would
 * be), not the final answer: a client that retries after a 504 or a dropped connection waits on the same
 * task again instead of starting a second one. The same key with a different request is 422; while the first
 * request is still starting the task, 409. Same rules and store as `idempotent()` in idempotency.ts.
 */
export async function startTaskOnce(
  req: Request,
  store: SqliteIdempotencyStore,
  start: () => Promise<string>,
): Promise<{ taskId: string; replayed: boolean }> {
  const key = req.header('idempotency-key');
  if (key === undefined) return { taskId: await start(), replayed: false };
  if (!KEY.test(key)) {
    throw new InvalidRequestError('Idempotency-Key must be 1-255 printable ASCII characters', [
      { path: ['Idempotency-Key'], message: 'invalid' },
    ]);
  }
  const claim = store.claim(req.apiKey, key, fingerprint(req, req.bodyHash!));
  if (claim.kind === 'mismatch')
    throw new UnprocessableError(`Idempotency-Key '${key}' was already used with a different request`);
  if (claim.kind === 'in-progress')
    throw new ConflictError(`a request with Idempotency-Key '${key}' is still being processed`);
  if (claim.kind === 'replay')
    return { taskId: ((claim.body as CreatedResponse).body as TaskAcceptedResponse).taskId, replayed: true };
  let taskId: string;
  try {
    taskId = await start();
  } catch (err) {
    store.release(req.apiKey, key);
    throw err;
  }
  const accepted: TaskAcceptedResponse = { taskId, status: 'running', statusUrl: taskStatusUrl(taskId) };
  const created: CreatedResponse = { status: 202, body: accepted, location: accepted.statusUrl };
  store.complete(req.apiKey, key, created.status, created);
  return { taskId, replayed: false };
}

/**
 * Waits for a task's results up to `timeoutMs`, or until the client goes away. Not ready in time: TimeoutError
 * (504 naming the task, which goes on). Failed for a permanent reason the API could not see coming: 400 (bad
 * input) with the activity's message; canceled: 409; anything else a 500, logged.
 */
export async function awaitTask(
  predict: PredictClient,
  taskId: string,
  timeoutMs: number,
  res: Response,
  onTimeout: () => void,
): Promise<ItemResult[]> {
  const gone = new AbortController();
  const onClose = () => gone.abort();
  res.once('close', onClose);
  try {
    const outcome = await predict.wait(taskId, timeoutMs, gone.signal);
    switch (outcome.status) {
      case 'succeeded':
        return outcome.results;
      case 'running':
        onTimeout();
        throw new TimeoutError(`the prediction did not finish within ${timeoutMs} ms; it goes on as task ${taskId}`, {
          taskId,
          statusUrl: taskStatusUrl(taskId),
        });
      case 'canceled':
        throw new ConflictError(`task ${taskId} was canceled`);
      case 'failed': {
        const { type, message } = outcome.error;
        if (type === 'InvalidInput') throw new InvalidRequestError(message, [{ path: ['inputs'], message }]);
        if (type === 'UnknownModel') throw new InvalidRequestError(message, [{ path: ['model'], message }]);
        throw new Error(`task ${taskId} failed: ${type}: ${message}`);
      }
    }
  } finally {
    res.off('close', onClose);
  }
}
