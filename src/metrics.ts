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

  /** Sync tasks that started after their deadline (the caller had its 504) and ran as late async work (worker). */
  readonly predictionTasksLate = new client.Counter({
    name: 'prediction_tasks_late_total',
    help: 'Sync prediction tasks that started after their deadline and ran as late async work (onTimeout continue)',
    registers: [this.registry],
  });

  /** Sync tasks dropped at their deadline because the caller said so (onTimeout cancel) (API). */
  readonly predictionDeadlineDrops = new client.Counter({
    name: 'prediction_deadline_drops_total',
    help: 'Sync prediction tasks dropped at their deadline (onTimeout cancel), by source',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  /** Online requests refused at once because the interactive path could not plausibly serve them in time (API). */
  readonly predictionsShed = new client.Counter({
    name: 'prediction_shed_total',
    help: 'Online prediction requests answered 503 by admission control, by source and reason',
    labelNames: ['source', 'reason'] as const,
    registers: [this.registry],
  });

  /** Time from an online request's arrival to its answer, by source and HTTP status (API). */
  readonly predictionDuration = new client.Histogram({
    name: 'prediction_duration_seconds',
    help: 'Online prediction requests from arrival to answer in seconds, by source and status',
    labelNames: ['source', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  /** The interactive task queue's backlog as last sampled from Temporal, by task type (workflow, activity) (API). */
  readonly interactiveBacklog = new client.Gauge({
    name: 'interactive_queue_backlog_tasks',
    help: "Tasks waiting in the interactive task queue's backlog, as last sampled from Temporal, by task type",
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  /** Age of the oldest waiting online task that a new sync prediction would queue behind, as last sampled (API). */
  readonly interactiveBacklogAge = new client.Gauge({
    name: 'interactive_queue_backlog_age_seconds',
    help: 'Age of the oldest task a new sync prediction would wait behind in the interactive task queue, as last sampled',
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
