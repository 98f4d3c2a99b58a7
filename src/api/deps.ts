import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { BatchClient } from '../client/batch-client.js';
import type { PredictClient } from '../client/predict-client.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { ModelRepository } from '../runtime/model-repository.js';
import type { IdempotencyStore } from '../stores/idempotency-store.js';
import type { OpenAIStore } from '../stores/openai-store.js';
import type { WorkLimiter } from '../stores/rate-limit-store.js';
import type { OnlineAdmission } from './admission.js';
import type { StreamTuning } from './stream-writer.js';

/** Everything the routes use; the server entry point builds it from configuration, tests from their stack. */
export interface AppDeps {
  batches: BatchClient;
  predict: PredictClient;
  models: ModelRepository;
  /** Idempotency keys, in the item store's database (SQLite or PostgreSQL, as the item store). */
  idempotency: IdempotencyStore;
  /** The rate limit of requests that create work, per API key, in the same database (0 per minute: none). */
  workLimiter: WorkLimiter;
  /** Files and batches of the OpenAI-compatible API, in the same database. */
  openai: OpenAIStore;
  metrics: Metrics;
  config: Pick<
    Config,
    | 'API_KEYS'
    | 'MAX_BATCH_ITEMS'
    | 'MAX_BODY_BYTES'
    | 'MAX_FILE_BYTES'
    | 'PREDICT_TIMEOUT_MS'
    | 'PREDICT_MAX_TIMEOUT_MS'
    | 'PREDICT_MAX_QUEUE_AGE_MS'
    | 'PREDICT_MAX_IN_FLIGHT'
    | 'PREDICT_MAX_BACKLOG'
    | 'WEBHOOK_ALLOWED_CIDRS'
    | 'TASK_QUEUE'
    | 'INTERACTIVE_TASK_QUEUE'
    | 'TEMPORAL_UI_PORT'
    | 'TEMPORAL_NAMESPACE'
  >;
  log: Logger;
  /** Tuning of the results and events streams (default DEFAULT_STREAM_TUNING). */
  streamTuning?: StreamTuning;
}

/** What the route handlers get: the app's dependencies, the one rate limit and the API's own document. */
export interface RouteDeps extends AppDeps {
  /** One budget per API key across the routes that create work (POST /v1/batches, /v1/predict(/async), /v2 infer). */
  workLimit: RequestHandler;
  /** Admission control of online predictions (one per API process). */
  admission: OnlineAdmission;
  streamTuning: StreamTuning;
  /** The OpenAPI document of the routes the app mounts, serialized once. */
  openApiJson: string;
}
