import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ErrorCode, type ErrorBody, type ErrorDetail } from '../../contracts/http-error.js';
import { AppError, RateLimitedError, UnavailableError, TimeoutError } from '../../errors.js';

/** The one error shape every failed request gets (contracts/http-error.ts). */
export function errorBody(code: ErrorCode, message: string, details?: ErrorDetail[]): ErrorBody {
  return { error: { code, message, ...(details ? { details } : {}) } };
}

/** 404 for routes that do not exist. */
export const notFoundRoute: RequestHandler = (req, res) => {
  res.status(404).json(errorBody(ErrorCode.notFound, `no route ${req.method} ${req.path}`));
};

/**
 * Maps app errors to their status and body parser failures to 400/413/415; anything else is a 500 that is logged
 * with its request id and never shows the client a stack trace.
 */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof AppError) {
      if (err instanceof RateLimitedError || err instanceof UnavailableError) {
        res.setHeader('Retry-After', String(err.retryAfterSeconds));
      }
      const extra = err instanceof TimeoutError ? err.extra : {};
      res.status(err.status).json({ ...errorBody(err.code, err.message, err.details), ...extra });
      return;
    }
    // body-parser errors carry an http status and a type
    const status = typeof err?.status === 'number' ? err.status : undefined;
    if (err?.type === 'entity.too.large' || status === 413) {
      res
        .status(413)
        .json(errorBody(ErrorCode.payloadTooLarge, `request body exceeds ${err.limit ?? 'the limit of'} bytes`));
      return;
    }
    if (err?.type === 'entity.parse.failed') {
      res.status(400).json(errorBody(ErrorCode.invalidRequest, 'request body is not valid JSON'));
      return;
    }
    if (status === 415 || err?.type === 'encoding.unsupported' || err?.type === 'charset.unsupported') {
      res.status(415).json(errorBody(ErrorCode.unsupportedMediaType, err.message));
      return;
    }
    if (status !== undefined && status >= 400 && status < 500) {
      res.status(status).json(errorBody(ErrorCode.invalidRequest, err.expose ? err.message : 'bad request'));
      return;
    }
    log.error({ err, requestId: req.requestId, method: req.method, path: req.path }, 'request failed');
    res.status(500).json(errorBody(ErrorCode.internal, `internal error (request id ${req.requestId})`));
  };
}
