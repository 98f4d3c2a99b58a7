import type { RequestHandler } from 'express';
import { RateLimitedError } from '../../errors.js';
import type { WorkLimiter } from '../../stores/rate-limit-store.js';

/**
 * The rate limit of requests that create work, per API key, as the limiter keeps it (in the item store's database,
 * shared by every API process: rate-limit-store.ts says what a client gets). Over it is 429 with Retry-After; a
 * database that cannot be reached is 503. Async: Express 5 passes a rejected promise to the error handler.
 */
export function rateLimit(limiter: WorkLimiter): RequestHandler {
  return async (req, _res, next) => {
    const decision = await limiter.consume(req.apiKey);
    if (!decision.allowed) {
      const wait = decision.retryAfterSeconds;
      throw new RateLimitedError(
        `more than ${limiter.perMinute} requests creating work per minute; retry in ${wait} s`,
        wait,
      );
    }
    next();
  };
}
