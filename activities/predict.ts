// STUB: the online prediction activity (issue 5) replaces this file.
import type { InferenceRuntime } from '../src/runtime/inference.js';
import type { Metrics } from '../src/metrics.js';

export interface PredictActivityDeps {
  runtime: Pick<InferenceRuntime, 'infer'>;
  metrics?: Metrics;
}

export function createPredictActivities(_deps: PredictActivityDeps) {
  return {};
}
