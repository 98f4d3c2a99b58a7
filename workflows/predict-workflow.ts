import { patched, proxyActivities, proxyLocalActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ItemResult } from '../src/contracts/batch.js';
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
 */
export async function predictWorkflow(input: PredictWorkflowInput): Promise<ItemResult[]> {
  const args = { model: input.model, version: input.version, items: input.items };
  return patched(PREDICT_LOCAL_ACTIVITY_PATCH) ? predictLocally(args) : predict(args);
}
