// A worker on its own task queue with a given model runtime (the real one or a scripted fake), its item store,
// webhook activities (WEBHOOK_ALLOWED_CIDRS from `env`), and the batch client that submits to it: the stack the
// workflow tests and the history recorder share.
import { createActivities } from '../../activities/index.js';
import { BatchClient } from '../../src/client/batch-client.js';
import type { Config } from '../../src/config.js';
import { Metrics } from '../../src/metrics.js';
import type { InferenceRuntime } from '../../src/runtime/inference.js';
import { recordMissingEnd } from '../../src/client/batch-end.js';
import type { ItemStore } from '../../src/stores/item-store.js';
import { openItemStore } from '../../src/stores/open-stores.js';
import type { WorkerOptions } from '@temporalio/worker';
import { startWorker, type StartedWorker } from '../../src/worker.js';
import { testConfig, testLog, workflowBundle } from './temporal.js';

export interface WorkerStack {
  config: Config;
  store: ItemStore;
  worker: StartedWorker;
  batches: BatchClient;
  /** What the activities counted (items finished, webhook deliveries). */
  metrics: Metrics;
  close(): Promise<void>;
}

export async function startWorkerStack(
  address: string,
  runtime: Pick<InferenceRuntime, 'infer' | 'inferMany'>,
  env: Record<string, string> = {},
  workerOptions: Partial<WorkerOptions> = {},
  /** Webhook collection settings (WebhookActivityDeps): how long one collect call waits, and when it asks Temporal. */
  webhookTiming: { collectWaitMs?: number; endFallbackMs?: number } = {},
): Promise<WorkerStack> {
  const config = testConfig(address, env);
  const store = await openItemStore(config);
  const batches = BatchClient.create(
    { address, namespace: config.TEMPORAL_NAMESPACE, taskQueue: config.TASK_QUEUE },
    store,
  );
  const metrics = new Metrics('worker');
  const worker = await startWorker(config, testLog, {
    workflowBundle: await workflowBundle(),
    activities: createActivities({
      runtime,
      store,
      metrics,
      webhooks: {
        recordMissingEnd: (id) => recordMissingEnd(batches.client, store, id),
        allowedCidrs: config.WEBHOOK_ALLOWED_CIDRS,
        ...webhookTiming,
      },
    }),
    ...workerOptions,
  });
  return {
    config,
    store,
    worker,
    batches,
    metrics,
    async close() {
      await worker.shutdown();
      await batches.close();
      await store.close();
    },
  };
}
