import { createHash } from 'node:crypto';
import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { BatchClient } from '../client/batch-client.js';
import type { PredictClient } from '../client/predict-client.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { ModelRepository } from '../runtime/model-repository.js';
import type { SqliteIdempotencyStore } from '../stores/idempotency-store.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from './json-depth.js';
import { auth } from './middleware/auth.js';
import { rateLimit } from './middleware/rate-limit.js';
import { errorHandler, notFoundRoute } from './middleware/errors.js';
import { requestId } from './middleware/request-id.js';
import { batchStreamRoutes } from './routes/batch-streams.js';
import { batchRoutes } from './routes/batches.js';
import { docsRoutes } from './routes/docs.js';
import { healthRoutes } from './routes/health.js';
import { kserveErrorHandler, kserveRoutes } from './routes/kserve.js';
import { modelRoutes } from './routes/models.js';
import { predictRoutes } from './routes/predict.js';

/** Everything the routes use; the server entry point builds it from configuration, tests from their stack. */
export interface AppDeps {
  batches: BatchClient;
  predict: PredictClient;
  models: ModelRepository;
  idempotency: SqliteIdempotencyStore;
  metrics: Metrics;
  config: Pick<
    Config,
    | 'API_KEYS'
    | 'MAX_BATCH_ITEMS'
    | 'MAX_BODY_BYTES'
    | 'RATE_LIMIT_PER_MINUTE'
    | 'PREDICT_TIMEOUT_MS'
    | 'PREDICT_MAX_TIMEOUT_MS'
    | 'WEBHOOK_ALLOWED_CIDRS'
    | 'TASK_QUEUE'
    | 'INTERACTIVE_TASK_QUEUE'
  >;
  log: Logger;
}

/** What the routes get: the app's dependencies and the one rate limit of requests that create work. */
export interface RouteDeps extends AppDeps {
  /** One bucket per API key across POST /v1/batches, /v1/predict(/async) and /v2 infer. */
  workLimit: RequestHandler;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** sha256 of the raw JSON body, as read (the idempotency fingerprint). */
    bodyHash?: string;
  }
}

/** The HTTP API as an Express app, without listen(): the server entry point and tests mount it. */
export function createApp(appDeps: AppDeps): Express {
  const deps: RouteDeps = { ...appDeps, workLimit: rateLimit(appDeps.config.RATE_LIMIT_PER_MINUTE) };
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(requestId);
  app.use(healthRoutes(deps));
  app.use(docsRoutes(deps));
  app.use(auth(deps.config.API_KEYS));
  app.use(
    express.json({
      limit: deps.config.MAX_BODY_BYTES,
      strict: true,
      verify: (req, _res, buf) => {
        if (jsonDepthExceeds(buf)) {
          throw Object.assign(new Error(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`), { status: 400, expose: true });
        }
        (req as express.Request).bodyHash = createHash('sha256').update(buf).digest('hex');
      },
    }),
  );
  app.use(batchRoutes(deps));
  app.use(batchStreamRoutes(deps));
  app.use(predictRoutes(deps));
  app.use(kserveRoutes(deps));
  app.use(modelRoutes(deps));
  app.use(notFoundRoute);
  app.use('/v2', kserveErrorHandler(deps.log)); // the Open Inference Protocol's own error shape
  app.use(errorHandler(deps.log));
  return app;
}
