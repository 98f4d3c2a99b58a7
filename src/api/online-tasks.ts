import type { Request, Response } from 'express';
import type { ItemResult } from '../contracts/batch.js';
import { DEADLINE_EXCEEDED, OnTimeout } from '../contracts/online-work.js';
import { taskStatusUrl, type TaskAcceptedResponse, type TaskSource } from '../contracts/predict.js';
import type { PredictClient, TaskDeadline } from '../client/predict-client.js';
import { PermanentItemFailure } from '../contracts/item-failure-type.js';
import { ConflictError, InvalidRequestError, TimeoutError, UnprocessableError } from '../errors.js';
import type { IdempotencyStore } from '../stores/idempotency-store.js';
import type { RouteDeps } from './deps.js';
import { claimKey, completeKey, type CreatedResponse, type WorkRequest } from './idempotency.js';

// What the online endpoints (/v1/predict, /v2/models/:name/infer) share: admission control, starting a task once
// per Idempotency-Key, and waiting for its result up to a deadline that travels with the task.

/** A sync prediction to run: where it comes from, how long its caller waits, and how to start its task. */
export interface SyncTask {
  source: TaskSource;
  timeoutMs: number;
  onTimeout: OnTimeout;
  work: WorkRequest;
  /** Checks the request before it is admitted (a client's mistake is a 4xx even under overload). */
  check?: () => Promise<void>;
  /** Starts the task (checked and admitted) with the caller's deadline; returns its id. */
  start: (deadline: TaskDeadline) => Promise<string>;
}

/**
 * Runs a sync prediction: admits it (OnlineAdmission: 503 at once when it could not plausibly finish in time),
 * starts its task once per Idempotency-Key with its deadline, and waits for the results up to `timeoutMs` (504
 * after it, the task going on or canceled as `onTimeout` says). Each answer is timed in
 * prediction_duration_seconds by source and status.
 */
export async function runSyncTask(
  { admission, idempotency, metrics, predict }: RouteDeps,
  req: Request,
  res: Response,
  task: SyncTask,
): Promise<{ taskId: string; results: ItemResult[] }> {
  const began = performance.now();
  res.once('close', () => {
    const status = res.writableFinished ? String(res.statusCode) : 'aborted';
    metrics.predictionDuration.observe({ source: task.source, status }, (performance.now() - began) / 1000);
  });
  const deadline = Date.now() + task.timeoutMs;
  let release = () => {};
  try {
    const { taskId, replayed } = await startTaskOnce(idempotency, req.apiKey, task.work, async () => {
      await task.check?.();
      release = admission.admitSync(task.source, task.timeoutMs);
      return task.start({ at: deadline, onTimeout: task.onTimeout });
    });
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    const results = await awaitTask(predict, taskId, deadline - Date.now(), res, () => {
      metrics.predictionTimeouts.inc();
      const late = `the prediction did not finish within ${task.timeoutMs} ms`;
      if (task.onTimeout === OnTimeout.continue) return `${late}; it goes on as task ${taskId}`;
      // The task's execution timeout is its deadline: the server ends it if it has not ended yet.
      metrics.predictionDeadlineDrops.inc({ source: task.source });
      return `${late}; task ${taskId} is dropped (onTimeout: cancel)`;
    });
    return { taskId, results };
  } finally {
    release();
  }
}

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
 * (504 naming the task; `onTimeout` counts it and says what became of it). Failed for a permanent reason the API
 * could not see coming: 400 (bad input) with the activity's message; canceled: 409; anything else a 500, logged.
 */
async function awaitTask(
  predict: PredictClient,
  taskId: string,
  timeoutMs: number,
  res: Response,
  onTimeout: () => string,
): Promise<ItemResult[]> {
  const timedOut = () =>
    new TimeoutError(onTimeout(), {
      taskId,
      statusUrl: taskStatusUrl(taskId),
    });
  const gone = new AbortController();
  const onClose = () => gone.abort();
  res.once('close', onClose);
  try {
    const outcome = await predict.wait(taskId, timeoutMs, gone.signal);
    switch (outcome.status) {
      case 'succeeded':
        return outcome.results;
      case 'running':
        throw timedOut();
      case 'canceled':
        // Dropped at its deadline (OnTimeout.cancel) by the server, just before this wait's own timer: a timeout.
        if (outcome.error.type === DEADLINE_EXCEEDED) throw timedOut();
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
