import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { MAX_API_KEY_LENGTH } from '../../contracts/limits.js';
import { UnauthorizedError } from '../../errors.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** The tenant of the request's API key (`default` when the API runs without keys). */
    tenant: string;
    /** The API key itself, which scopes idempotency keys and the rate limit. */
    apiKey: string;
  }
}

/** Tenant of every request when no API keys are configured (the API then listens on loopback only). */
export const DEFAULT_TENANT = 'default';

/**
 * Bearer API keys from configuration. With no keys configured every request belongs to tenant `default`;
 * otherwise a missing, malformed (longer than MAX_API_KEY_LENGTH included) or unknown key is 401. Keys are
 * compared in constant time.
 */
export function auth(keys: ReadonlyMap<string, string>): RequestHandler {
  const known = [...keys.entries()].map(([key, tenant]) => ({ key: Buffer.from(key), raw: key, tenant }));
  return (req, res, next) => {
    if (known.length === 0) {
      req.tenant = DEFAULT_TENANT;
      req.apiKey = '';
      next();
      return;
    }
    const header = req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || match[1]!.length > MAX_API_KEY_LENGTH) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new UnauthorizedError(
        header
          ? `the Authorization header must be "Bearer <api key>", the key at most ${MAX_API_KEY_LENGTH} characters`
          : 'an API key is required (Authorization: Bearer <key>)',
      );
    }
    const given = Buffer.from(match[1]!);
    const hit = known.find((k) => k.key.length === given.length && timingSafeEqual(k.key, given));
    if (!hit) {
      res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new UnauthorizedError('unknown API key');
    }
    req.tenant = hit.tenant;
    req.apiKey = hit.raw;
    next();
  };
}
