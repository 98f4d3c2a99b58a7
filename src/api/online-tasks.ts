import type { Request, Response } from 'express';
import type { ItemResult } from '../contracts/batch.js';
import { DEADLINE_EXCEEDED, OnTimeout } from '../contracts/online-work.js';
import { taskStatusUrl, type TaskAcceptedResponse, type TaskSource } from '../contracts/predict.js';
import { TaskStartTimeoutError, type TaskDeadline, type TaskOutcome } from '../client/predict-client.js';
import { PermanentItemFailure } from '../contracts/item-failure-type.js';
import { ConflictError, InvalidRequestError, TimeoutError, UnprocessableError } from '../errors.js';
import type { IdempotencyStore } from '../stores/idempotency-store.js';
import type { RouteDeps } from './deps.js';
import { claimKey, completeKey, type CreatedResponse, type WorkRequest } from './idempotency.js';

// What the online endpoints (/v1/predict, /v2/models/:name/infer) share: admission control, starting a task once
// per Idempotency-Key, and waiting for its result up to a deadline that travels with the task.

/** How long a sync prediction that names no timeout waits: PREDICT_TIMEOUT_MS, within PREDICT_MAX_TIMEOUT_MS. */
export const defaultSyncTimeoutMs = (config: RouteDeps['config']): number =>
  Math.min(config.PREDICT_TIMEOUT_MS, config.PREDICT_MAX_TIMEOUT_MS);

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
  // The caller going away, while its task starts or while it waits, ends the wait.
  const gone = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) gone.abort();
    const status = res.writableFinished ? String(res.statusCode) : 'aborted';
    metrics.predictionDuration.observe({ source: task.source, status }, (performance.now() - began) / 1000);
  });
  const deadline = Date.now() + task.timeoutMs;
  const cancel = task.onTimeout === OnTimeout.cancel;
  let release = () => {};
  try {
    const { taskId, replayed } = await startTaskOnce(idempotency, req.apiKey, task.work, async () => {
      await task.check?.();
      release = admission.admitSync(task.source, task.timeoutMs);
      return task.start({ at: deadline, onTimeout: task.onTimeout });
    });
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    const outcome = await predict.wait(taskId, deadline - Date.now(), gone.signal);
    const dropped = outcome.status === 'canceled' && outcome.error.type === DEADLINE_EXCEEDED;
    if (outcome.status !== 'running' && !dropped) return { taskId, results: resultsOf(taskId, outcome) };
    // The wait ended without a result: past the deadline (or the server dropped the task there), or the caller left.
    if (cancel && !replayed) metrics.predictionDeadlineDrops.inc({ source: task.source });
    if (gone.signal.aborted) {
      // Nobody reads an answer now. With `cancel` the task goes too, before its deadline if need be.
      if (cancel) await predict.cancel(taskId).catch(() => undefined);
      throw new TimeoutError(`the client went away; task ${taskId} ${cancel ? 'is canceled' : 'goes on'}`, {});
    }
    metrics.predictionTimeouts.inc();
    const goesOn = cancel
      ? `task ${taskId} is dropped at its deadline unless it finishes first (onTimeout: cancel)`
      : `it goes on as task ${taskId}`;
    throw new TimeoutError(`the prediction did not finish within ${task.timeoutMs} ms; ${goesOn}`, {
      taskId,
      statusUrl: taskStatusUrl(taskId),
    });
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
    // A start that timed out may have started its task: the key keeps it, so a retry waits on it (404 if it never
    // started) instead of starting a second one. Any other failure started nothing: the key is free again.
    if (err instanceof TaskStartTimeoutError) {
      await completeKey(store, apiKey, key, createdResponse(err.taskId));
    } else {
      await store.release(apiKey, key);
    }
    throw err;
  }
  await completeKey(store, apiKey, key, createdResponse(taskId));
  return { taskId, replayed: false };
}

/** What an Idempotency-Key remembers of a started task: the 202 the async endpoint would have given. */
function createdResponse(taskId: string): CreatedResponse {
  const accepted: TaskAcceptedResponse = { taskId, status: 'running', statusUrl: taskStatusUrl(taskId) };
  return { status: 202, body: accepted, location: accepted.statusUrl };
}

/**
 * A closed task's results, or why there are none: failed for a permanent reason the API could not see coming, 400
 * (bad input) with the activity's message, or 422 (a non-finite output); canceled: 409; anything else a 500, logged.
 */
function resultsOf(taskId: string, outcome: Exclude<TaskOutcome, { status: 'running' }>): ItemResult[] {
  switch (outcome.status) {
    case 'succeeded':
      return outcome.results;
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
}
