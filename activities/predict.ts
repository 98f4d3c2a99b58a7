import type { ItemResult } from '../src/contracts/batch.js';
import type { PredictActivityInput } from '../src/contracts/predict.js';
import type { InferenceRuntime } from '../src/runtime/inference.js';
import { toActivityFailure } from './permanent-failure.js';

export interface PredictActivityDeps {
  /** The model runtime (tests may wrap the real one; Temporal itself is never faked). */
  runtime: Pick<InferenceRuntime, 'infer'>;
}

export function createPredictActivities({ runtime }: PredictActivityDeps) {
  return {
    /**
     * Infers an online task's items. They are submitted to the runtime together, as interactive items, so its
     * dynamic batcher merges them (and any concurrent task's items) into as few model runs as maxBatchSize allows,
     * ahead of any batch's items. The task succeeds only as a whole: the first failing item fails it,
     * non-retryably when the fault is permanent.
     */
    async predict(input: PredictActivityInput): Promise<ItemResult[]> {
      try {
        return await Promise.all(
          input.items.map((inputs) => runtime.infer(input.model, input.version, inputs, 'interactive')),
        );
      } catch (err) {
        throw toActivityFailure(err);
      }
    },
  };
}
