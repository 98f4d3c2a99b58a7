import client from 'prom-client';

/**
 * The Prometheus metrics of one process (prom-client). The API serves its registry at GET /metrics; the worker
 * serves its own on WORKER_METRICS_PORT together with the Temporal SDK's metrics. Each metric is defined once
 * here and counted where its event happens.
 */
export class Metrics {
  readonly registry = new client.Registry();

  /** Predictions asked for, by where they came from: sync and async predict, KServe v2 infer, and batch items. */
  readonly predictionRequests = new client.Counter({
    name: 'prediction_requests_total',
    help: 'Prediction requests by source (sync, async, kserve, batch: one per submitted item)',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  /** Sync predictions that answered 504 because the result was not ready in time. */
  readonly predictionTimeouts = new client.Counter({
    name: 'prediction_timeouts_total',
    help: 'Sync predictions that timed out (504) while the work went on',
    registers: [this.registry],
  });

  /** Items that reached a final state (counted by the worker that recorded it). */
  readonly itemsFinished = new client.Counter({
    name: 'batch_items_finished_total',
    help: 'Batch items by final state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  /** Time of one model call (one dynamic batch), by model. */
  readonly inferenceLatency = new client.Histogram({
    name: 'inference_latency_seconds',
    help: 'Time of one model call (a dynamic batch) in seconds',
    labelNames: ['model'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  /** Items per model call: how well dynamic batching coalesces. */
  readonly inferenceBatchSize = new client.Histogram({
    name: 'inference_batch_size',
    help: 'Items per model call',
    labelNames: ['model'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  /** Webhook delivery attempts by outcome (delivered, retry, gone, refused, exhausted). */
  readonly webhookDeliveries = new client.Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  constructor(process: 'api' | 'worker') {
    this.registry.setDefaultLabels({ process });
    client.collectDefaultMetrics({ register: this.registry });
  }
}
