import { Context } from '@temporalio/activity';
import type { ItemResult } from '../src/contracts/batch.js';
import type { PredictActivityInput } from '../src/contracts/predict.js';
import type { Metrics } from '../src/metrics.js';
import type { InferenceRuntime } from '../src/runtime/inference.js';
import { toActivityFailure } from './permanent-failure.js';

export interface PredictActivityDeps {
  /** The model runtime (tests may wrap the real one; Temporal itself is never faked). */
  runtime: Pick<InferenceRuntime, 'infer'>;
  metrics?: Metrics;
}

export function createPredictActivities({ runtime, metrics }: PredictActivityDeps) {
  return {
    /**
     * Infers an online task's items. They are submitted to the runtime together, as interactive items, so its
     * dynamic batcher merges them (and any concurrent task's items) into as few model runs as maxBatchSize allows,
     * ahead of any batch's items. A late task's items (their caller has gone) queue as batch items do, and are
     * counted in prediction_tasks_late_total. The task succeeds only as a whole: the first failing item fails it,
     * non-retryably when the fault is permanent.
     */
    async predict(input: PredictActivityInput): Promise<ItemResult[]> {
      const priority = input.late ? 'batch' : 'interactive';
      if (input.late && Context.current().info.attempt === 1) metrics?.predictionTasksLate.inc();
      try {
        return await Promise.all(
          input.items.map((inputs) => runtime.infer(input.model, input.version, inputs, priority)),
        );
      } catch (err) {
        throw toActivityFailure(err);
      }
    },
  };
}
