import type { RequestHandler } from 'express';
import { RateLimitedError } from '../../errors.js';

/**
 * A token bucket per API key for requests that create work: `perMinute` tokens, refilled continuously, with a
 * burst of the same size. Over it is 429 with Retry-After. 0 turns the limit off.
 */
export function rateLimit(perMinute: number): RequestHandler {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (req, _res, next) => {
    if (perMinute <= 0) return next();
    const now = Date.now();
    const bucket = buckets.get(req.apiKey) ?? { tokens: perMinute, at: now };
    bucket.tokens = Math.min(perMinute, bucket.tokens + ((now - bucket.at) / 60_000) * perMinute);
    bucket.at = now;
    buckets.set(req.apiKey, bucket);
    if (bucket.tokens < 1) {
      const wait = Math.ceil(((1 - bucket.tokens) / perMinute) * 60);
      throw new RateLimitedError(`more than ${perMinute} requests creating work per minute; retry in ${wait} s`, wait);
    }
    bucket.tokens -= 1;
    next();
  };
}
