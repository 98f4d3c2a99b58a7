import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { ConflictError, UnprocessableError } from '../errors.js';
import type { IdempotencyStore } from '../stores/idempotency-store.js';

/** What a handler that creates work answers; it is what a replay answers again. */
export interface CreatedResponse {
  status: number;
  body: unknown;
  /** The Location header, when there is one. */
  location?: string;
}

/** The header of every route that creates work (parse-request.ts reads it, openapi.ts documents it). */
export const IdempotencyKeyHeader = z.object({
  'Idempotency-Key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, 'expected 1-255 printable ASCII characters')
    .optional()
    .meta({
      description:
        'Makes a request that creates work safe to retry: the same key and request replays the first response (`Idempotent-Replayed: true`) without creating anything; the same key with another request is 422; while the first is still running, 409. Scoped to the API key; 1-255 printable ASCII characters.',
    }),
});

/** A request that creates work: its `Idempotency-Key` (if any) and its fingerprint. */
export interface WorkRequest {
  key: string | undefined;
  fingerprint: string;
}

/** A stable fingerprint of a request: method, path, query and the body's bytes (as hashed by the body reader). */
export function fingerprint(req: Request, bodyHash: string): string {
  return createHash('sha256').update(`${req.method} ${req.originalUrl}\n${bodyHash}`).digest('hex');
}

/**
 * Looks up an `Idempotency-Key` for its API key: undefined without one; the stored response when the same
 * request came before; otherwise the key, now claimed by this request, which must complete() or release() it.
 * The same key with another request is 422; while its first request runs, 409.
 */
export async function claimKey(
  store: IdempotencyStore,
  apiKey: string,
  { key, fingerprint: requestFingerprint }: WorkRequest,
): Promise<{ key: string; replay?: CreatedResponse } | undefined> {
  if (key === undefined) return undefined;
  const claim = await store.claim(apiKey, key, requestFingerprint);
  if (claim.kind === 'mismatch') {
    throw new UnprocessableError(`Idempotency-Key '${key}' was already used with a different request`);
  }
  if (claim.kind === 'in-progress') {
    throw new ConflictError(`a request with Idempotency-Key '${key}' is still being processed`);
  }
  return claim.kind === 'replay' ? { key, replay: claim.body as CreatedResponse } : { key };
}

/**
 * Runs `create` at most once per `Idempotency-Key` and API key. Without a key it just runs. The same key
 * and request replays the stored response (marked `Idempotent-Replayed: true`) without creating anything; the
 * same key with a different request is 422; the same key while its first request is still running is 409.
 * Only successful (2xx) responses are stored: after an error the key may be used again.
 */
export async function idempotent(
  req: Request,
  res: Response,
  store: IdempotencyStore,
  work: WorkRequest,
  create: () => Promise<CreatedResponse>,
): Promise<void> {
  const send = (r: CreatedResponse) => {
    if (r.location) res.location(r.location);
    res.status(r.status).json(r.body);
  };
  const claim = await claimKey(store, req.apiKey, work);
  if (!claim) return send(await create());
  const { key } = claim;
  if (claim.replay) {
    res.setHeader('Idempotent-Replayed', 'true');
    return send(claim.replay);
  }
  let created: CreatedResponse;
  try {
    created = await create();
  } catch (err) {
    await store.release(req.apiKey, key);
    throw err;
  }
  if (created.status >= 200 && created.status < 300) await completeKey(store, req.apiKey, key, created);
  else await store.release(req.apiKey, key);
  send(created);
}

/**
 * Stores the response of work that was created. The work exists by now, so a store fault must not turn into an
 * error response (the client would retry and create it again): tried three times, then given up with a process
 * warning. The key then stays claimed, answering 409, until it is taken as abandoned.
 */
export async function completeKey(
  store: IdempotencyStore,
  apiKey: string,
  key: string,
  created: CreatedResponse,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await store.complete(apiKey, key, created.status, created);
    } catch (err) {
      if (attempt === 3) {
        process.emitWarning(`Idempotency-Key '${key}' was not stored: ${(err as Error).message}`, 'IdempotencyWarning');
        return;
      }
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}
