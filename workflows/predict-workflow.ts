import {
  ApplicationFailure,
  patched,
  proxyActivities,
  proxyLocalActivities,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ItemResult } from '../src/contracts/batch.js';
import { DEADLINE_EXCEEDED, OnTimeout, TaskPriority } from '../src/contracts/online-work.js';
import type { PredictWorkflowInput } from '../src/contracts/predict.js';

/** Error types the predict activity throws for faults that retrying cannot fix. */
export const NON_RETRYABLE_PREDICT_ERRORS = ['InvalidInput', 'UnknownModel', 'ModelLoadError'];

/**
 * Online work is interactive: a few quick attempts, then fail, rather than the batch's long backoff. The
 * activity runs on this workflow's task queue, the interactive one, so its slots are the reserved ones.
 */
const PREDICT_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: {
    maximumAttempts: 3,
    initialInterval: '1 second',
    backoffCoefficient: 2,
    nonRetryableErrorTypes: NON_RETRYABLE_PREDICT_ERRORS,
  },
};
const { predict } = proxyActivities<Activities>(PREDICT_OPTIONS);
const { predict: predictLocally } = proxyLocalActivities<Activities>(PREDICT_OPTIONS);
/** A sync task whose caller has gone: async work, queued behind every fresh online task. */
const { predict: predictLate } = proxyActivities<Activities>({
  ...PREDICT_OPTIONS,
  priority: { priorityKey: TaskPriority.late },
});

/**
 * Tasks started since this patch run `predict` as a local activity: inside the workflow task, on the
 * interactive worker that holds it, which saves a round trip through the server per task (the sync predict
 * latency measured in BENCHMARKS.md). Tasks recorded before it keep their regular activity on replay.
 */
export const PREDICT_LOCAL_ACTIVITY_PATCH = 'predict-local-activity';

/**
 * One online prediction task (`task-<taskId>`): infers its items in one activity, so the runtime's dynamic
 * batcher can merge them, and returns their results in order. The result stays in history: a task is one
 * request's worth of items, and GET /v1/tasks reads it from there.
 *
 * A sync task that starts after its deadline (its caller has had its 504) is not run as interactive work: with
 * `onTimeout: continue` it runs as a regular activity at TaskPriority.late, behind every fresh online task, so a
 * backlog of such tasks drains at the cost of scheduling one activity each. With `cancel` the task's execution
 * timeout (its deadline, set by the client) ends it on the server, so it never reaches a worker; should a worker
 * take it late all the same, it fails as DEADLINE_EXCEEDED without running. Lateness is measured on the server's
 * clock: workflow time (the start of this workflow task, when a worker took it) against the task's start time plus
 * the caller's budget.
 */
export async function predictWorkflow(input: PredictWorkflowInput): Promise<ItemResult[]> {
  const args = { model: input.model, version: input.version, items: input.items };
  const lateByMs = input.budgetMs === undefined ? 0 : Date.now() - workflowInfo().startTime.getTime() - input.budgetMs;
  if (lateByMs > 0) {
    if (input.onTimeout === OnTimeout.cancel) {
      throw ApplicationFailure.nonRetryable(
        `the task had not started ${lateByMs} ms after its deadline, and its caller asked to cancel it then`,
        DEADLINE_EXCEEDED,
      );
    }
    return predictLate({ ...args, late: true });
  }
  return patched(PREDICT_LOCAL_ACTIVITY_PATCH) ? predictLocally(args) : predict(args);
}
