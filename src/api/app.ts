import { createHash } from 'node:crypto';
import express, { type Express } from 'express';
import { OnlineAdmission } from './admission.js';
import type { AppDeps, RouteDeps } from './deps.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from './json-depth.js';
import { auth } from './middleware/auth.js';
import { errorHandler, notFoundRoute } from './middleware/errors.js';
import { KSERVE_PREFIX, kserveErrorHandler, kserveNotFound } from './middleware/kserve-errors.js';
import { methodNotAllowed } from './middleware/method-not-allowed.js';
import { rateLimit } from './middleware/rate-limit.js';
import { requestId } from './middleware/request-id.js';
import { mountRoutes } from './mount-routes.js';
import { buildOpenApiDocument } from './openapi.js';
import { docsAssets } from './routes/docs.js';
import { dashboard } from './routes/ui.js';
import type { ApiRoute } from './route.js';
import { API_ROUTES } from './routes/index.js';
import { DEFAULT_STREAM_TUNING } from './stream-writer.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** sha256 of the raw JSON body, as read (the idempotency fingerprint). */
    bodyHash?: string;
  }
}

/**
 * The HTTP API as an Express app, without listen(): the server entry point and tests mount it. Its routes are
 * the declared ones (routes/index.ts), and GET /openapi.json documents exactly those.
 */
export function createApp(appDeps: AppDeps): Express {
  const deps: RouteDeps = {
    ...appDeps,
    workLimit: rateLimit(appDeps.workLimiter),
    admission: new OnlineAdmission(appDeps.predict, appDeps.config, appDeps.metrics, appDeps.log),
    streamTuning: appDeps.streamTuning ?? DEFAULT_STREAM_TUNING,
    openApiJson: JSON.stringify(buildOpenApiDocument(API_ROUTES)),
  };
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(requestId);
  app.use(methodNotAllowed(API_ROUTES)); // 405 for a declared path asked with a method it does not serve
  app.use(
    mountRoutes(
      API_ROUTES.filter((r) => r.public),
      deps,
    ),
  );
  app.use(docsAssets());
  app.use(dashboard(deps.config, API_ROUTES)); // the dashboard's static files under /ui, public like /docs
  app.use(auth(deps.config.API_KEYS));
  // A route whose body is a stream with no JSON body beside it reads the whole body itself (the Open Inference
  // Protocol's infer: JSON followed by binary tensor data), so it comes before the JSON parser would consume it.
  const ownBody = (r: ApiRoute) => r.request?.stream !== undefined && r.request.body === undefined;
  app.use(
    mountRoutes(
      API_ROUTES.filter((r) => !r.public && ownBody(r)),
      deps,
    ),
  );
  app.use(
    express.json({
      limit: deps.config.MAX_BODY_BYTES,
      strict: true,
      verify: (req, _res, buf) => {
        if (jsonDepthExceeds(buf)) {
          throw Object.assign(new Error(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`), {
            status: 400,
            expose: true,
          });
        }
        (req as express.Request).bodyHash = createHash('sha256').update(buf).digest('hex');
      },
    }),
  );
  app.use(
    mountRoutes(
      API_ROUTES.filter((r) => !r.public && !ownBody(r)),
      deps,
    ),
  );
  app.use(kserveNotFound());
  app.use(notFoundRoute);
  app.use(KSERVE_PREFIX, kserveErrorHandler(deps.log)); // the Open Inference Protocol's own error shape
  app.use(errorHandler(deps.log));
  return app;
}
