import type { ZodType } from 'zod';
import { ErrorBody } from '../contracts/http-error.js';
import { PredictTimeoutResponse } from '../contracts/predict.js';
import { KSERVE_PREFIX } from './middleware/kserve-errors.js';
import { requestHeaders } from './parse-request.js';
import type { ApiRoute, ErrorStatus } from './route.js';

/** Each error status as a response component: its name, when it happens, and its body in the house shape. */
export const ERROR_RESPONSES: Record<ErrorStatus, { name: string; description: string; body: ZodType }> = {
  400: {
    name: 'BadRequest',
    description:
      'The request is malformed: bad JSON or NDJSON, unknown or missing fields, wrong types, non-finite numbers, nesting deeper than 32 levels, inputs that do not fit the model. `details` names each field path (`line.<n>` for an NDJSON line).',
    body: ErrorBody,
  },
  401: {
    name: 'Unauthorized',
    description:
      'No API key, an unknown one, or an Authorization header that is not `Bearer <key>` (only when API_KEYS is configured).',
    body: ErrorBody,
  },
  404: {
    name: 'NotFound',
    description:
      'No such thing for this API key: unknown or malformed ids and other tenants’ batches and tasks look alike.',
    body: ErrorBody,
  },
  409: {
    name: 'Conflict',
    description:
      'The request conflicts with the state of what it names: the batch has ended, or a request with this Idempotency-Key is still being processed.',
    body: ErrorBody,
  },
  413: {
    name: 'PayloadTooLarge',
    description: 'The body is over MAX_BODY_BYTES, or the batch over MAX_BATCH_ITEMS items.',
    body: ErrorBody,
  },
  415: {
    name: 'UnsupportedMediaType',
    description: 'The body comes in a media type the route does not take.',
    body: ErrorBody,
  },
  422: {
    name: 'Unprocessable',
    description:
      'The Idempotency-Key was already used with a different request, or (predict) the model computed a NaN or infinite output from valid inputs (`NonFiniteOutput`).',
    body: ErrorBody,
  },
  429: {
    name: 'RateLimited',
    description:
      'More than RATE_LIMIT_PER_MINUTE requests creating work for this API key; retry after `Retry-After` seconds.',
    body: ErrorBody,
  },
  503: {
    name: 'Unavailable',
    description:
      'Temporal, the item store or the model is unavailable; a request that creates work has queued nothing. Retry after `Retry-After` seconds.',
    body: ErrorBody,
  },
  504: {
    name: 'Timeout',
    description: 'The result was not ready in time; the task goes on and the body names it.',
    body: PredictTimeoutResponse,
  },
};

/** Whether a route answers errors in the Open Inference Protocol's shape (middleware/kserve-errors.ts). */
export function usesKServeErrors(path: string): boolean {
  return path === KSERVE_PREFIX || path.startsWith(`${KSERVE_PREFIX}/`);
}

/**
 * Every error status a route answers with: those its handler produces, and those of what mount-routes.ts puts
 * before it: authentication (401), the rate limit and Idempotency-Key of routes that create work (429, 409,
 * 422), the media type and size of a body (415, 413), and the parsing of each declared part (400, or 404 for
 * a malformed path parameter).
 */
export function errorStatuses(route: ApiRoute): ErrorStatus[] {
  const statuses = new Set<ErrorStatus>(route.errors ?? []);
  const { params, query, body, stream } = route.request ?? {};
  if (!route.public) statuses.add(401);
  if (route.createsWork) for (const s of [409, 422, 429] as const) statuses.add(s);
  if (body || stream) for (const s of [400, 413, 415] as const) statuses.add(s);
  if (query || requestHeaders(route)) statuses.add(400);
  for (const name of Object.keys(params?.shape ?? {})) statuses.add(route.badRequestParams?.includes(name) ? 400 : 404);
  return [...statuses].sort((a, b) => a - b);
}
