// STUB: the webhook delivery activities (issue 5) replace this file.
import type { BatchEnd } from '../src/client/batch-client.js';
import type { Metrics } from '../src/metrics.js';
import type { ItemStore } from '../src/stores/item-store.js';

export interface WebhookActivityDeps {
  store: ItemStore;
  /** How a batch ended, or undefined while it runs (BatchClient.outcome). */
  outcome(batchId: string): Promise<BatchEnd | undefined>;
  /** CIDRs that deliveries may reach although private, loopback or link-local (WEBHOOK_ALLOWED_CIDRS). */
  allowedCidrs: readonly string[];
  metrics?: Metrics;
}

export function createWebhookActivities(_deps: WebhookActivityDeps) {
  return {};
}
