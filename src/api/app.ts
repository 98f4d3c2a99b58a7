import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { batchRoutes, type BatchRoutesDeps } from './routes/batches.js';
import { healthRoutes } from './routes/health.js';
import { errorHandler, notFoundRoute } from './middleware/errors.js';
import { requestId } from './middleware/request-id.js';

export interface AppDeps extends BatchRoutesDeps {
  log: Logger;
  maxBodyBytes: number;
}

/** The HTTP API as an Express app, without listen(): the server entry point and tests mount it. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestId);
  app.use(express.json({ limit: deps.maxBodyBytes, strict: true }));
  app.use(healthRoutes());
  app.use(batchRoutes(deps));
  app.use(notFoundRoute);
  app.use(errorHandler(deps.log));
  return app;
}
