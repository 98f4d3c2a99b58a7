import { createBatchEndActivities } from './batch-end.js';
import { createInferenceActivities, type InferenceActivityDeps } from './inference.js';
import { createPredictActivities } from './predict.js';
import { createWebhookActivities, type WebhookActivityDeps } from './webhooks.js';

export interface ActivityDeps extends InferenceActivityDeps {
  /** Webhook deliveries; without it the worker registers no webhook activities (some tests). */
  webhooks?: Omit<WebhookActivityDeps, 'store' | 'metrics'>;
}

/** Every activity the worker registers, bound to its dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createInferenceActivities(deps),
    ...createPredictActivities(deps),
    ...createBatchEndActivities(deps),
    ...createWebhookActivities({
      allowedCidrs: [],
      ...deps.webhooks,
      store: deps.store,
      metrics: deps.metrics,
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
