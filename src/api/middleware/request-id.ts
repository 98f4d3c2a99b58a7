import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

declare module 'express-serve-static-core' {
  interface Request {
    /** Echoed as `x-request-id`; names the request in logs and 500 bodies. */
    requestId: string;
  }
}

/** Takes the caller's `x-request-id` if sane, else makes one, and echoes it. */
export const requestId: RequestHandler = (req, res, next) => {
  const given = req.header('x-request-id');
  req.requestId = given && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
  res.setHeader('x-request-id', req.requestId);
  next();
};
