import { Router, type ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import type { KServeErrorResponse } from '../../contracts/predict.js';
import { AppError, NotFoundError, RateLimitedError, UnavailableError, TimeoutError } from '../../errors.js';

/** Where errors take the Open Inference Protocol's shape (`{ "error": "<message>" }`) instead of the house one. */
export const KSERVE_PREFIX = '/v2';

/** Any /v2 path no declared route serves: 404, which kserveErrorHandler answers in the protocol's shape. */
export function kserveNotFound(): Router {
  const router = Router();
  router.all([KSERVE_PREFIX, `${KSERVE_PREFIX}/{*rest}`], (req) => {
    throw new NotFoundError(`no route ${req.method} ${req.path}`);
  });
  return router;
}

/**
 * Errors of the /v2 routes in the Open Inference Protocol's shape, `{ "error": "<message>" }`, with the status
 * the house error middleware would give them (and Retry-After where it would set it); a 504 also names the
 * task. Mounted on `/v2` before the house handler, it covers the routes and what fails before them (no API
 * key, a body that is not JSON or too large).
 */
export function kserveErrorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const send = (status: number, body: KServeErrorResponse) => res.status(status).json(body);
    if (err instanceof AppError) {
      if (err instanceof RateLimitedError || err instanceof UnavailableError) {
        res.setHeader('Retry-After', String(err.retryAfterSeconds));
      }
      return send(err.status, { error: err.message, ...(err instanceof TimeoutError ? err.extra : {}) });
    }
    // body-parser's errors carry an HTTP status and a type
    const status = typeof err?.status === 'number' ? (err.status as number) : undefined;
    if (err?.type === 'entity.parse.failed') return send(400, { error: 'request body is not valid JSON' });
    if (status !== undefined && status >= 400 && status < 500) {
      return send(status, { error: err.expose ? err.message : 'bad request' });
    }
    log.error({ err, requestId: req.requestId, method: req.method, path: req.path }, 'request failed');
    send(500, { error: `internal error (request id ${req.requestId})` });
  };
}
