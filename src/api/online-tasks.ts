import type { Response } from 'express';
import type { ItemResult } from '../contracts/batch.js';
import { taskStatusUrl, type TaskAcceptedResponse } from '../contracts/predict.js';
import type { PredictClient } from '../client/predict-client.js';
import { PermanentItemFailure } from '../contracts/item-failure-type.js';
import { ConflictError, InvalidRequestError, TimeoutError, UnprocessableError } from '../errors.js';
import type { IdempotencyStore } from '../stores/idempotency-store.js';
import { claimKey, completeKey, type CreatedResponse, type WorkRequest } from './idempotency.js';

// What the online endpoints (/v1/predict, /v2/models/:name/infer) share: starting a task once per
// Idempotency-Key, and waiting for its result up to a deadline.

/**
 * Starts a task at most once per `Idempotency-Key` and API key, for endpoints that answer with the task's
 * result rather than with the task. What is remembered is the task (as the 202 of the async endpoint would
 * be), not the final answer: a client that retries after a 504 or a dropped connection waits on the same
 * task again instead of starting a second one. The same key with a different request is 422; while the first
 * request is still starting the task, 409. Same rules and store as `idempotent()` in idempotency.ts.
 */
export async function startTaskOnce(
  store: IdempotencyStore,
  apiKey: string,
  work: WorkRequest,
  start: () => Promise<string>,
): Promise<{ taskId: string; replayed: boolean }> {
  const claim = await claimKey(store, apiKey, work);
  if (!claim) return { taskId: await start(), replayed: false };
  const { key } = claim;
  if (claim.replay) return { taskId: (claim.replay.body as TaskAcceptedResponse).taskId, replayed: true };
  let taskId: string;
  try {
    taskId = await start();
  } catch (err) {
    await store.release(apiKey, key);
    throw err;
  }
  const accepted: TaskAcceptedResponse = { taskId, status: 'running', statusUrl: taskStatusUrl(taskId) };
  const created: CreatedResponse = { status: 202, body: accepted, location: accepted.statusUrl };
  await completeKey(store, apiKey, key, created);
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
        if (type === PermanentItemFailure.InvalidInput)
          throw new InvalidRequestError(message, [{ path: ['inputs'], message }]);
        if (type === PermanentItemFailure.UnknownModel)
          throw new InvalidRequestError(message, [{ path: ['model'], message }]);
        // Valid inputs on which the model computes NaN or infinity: not a malformed request, and retrying is futile.
        if (type === PermanentItemFailure.NonFiniteOutput)
          throw new UnprocessableError(message, [{ path: ['inputs'], message }]);
        throw new Error(`task ${taskId} failed: ${type}: ${message}`);
      }
    }
  } finally {
    res.off('close', onClose);
  }
}
