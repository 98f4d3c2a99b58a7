import type { Request } from 'express';
import typeis from 'type-is';
import { z } from 'zod';
import { InvalidRequestError, NotFoundError, UnsupportedMediaTypeError } from '../errors.js';
import { IdempotencyKeyHeader } from './idempotency.js';
import { parseOrThrow } from './middleware/validate.js';
import type { ApiRoute } from './route.js';

/** Every part of a request its route declares, parsed (RouteInput before the route's types are applied). */
export interface ParsedRequest {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  headers: Record<string, unknown>;
  body: unknown;
  idempotencyKey: string | undefined;
}

/**
 * Parses every part of a request its route declares, in this order: media type (415), path (404, or 400 for
 * `badRequestParams`), query, headers, then the JSON body (400s whose details name each field). A declared
 * stream body is left to the handler. What no schema names is not read.
 */
export function parseRequest(route: ApiRoute, req: Request): ParsedRequest {
  const { params, query, body, stream } = route.request ?? {};
  const contentType = req.header('content-type');
  // The declared type, whether or not a body came with it (req.is says no to any type when there is no body, and a
  // 415 would then name the very type the client sent): an empty body is the body parser's or the handler's 400.
  const isType = (types: readonly string[]) => contentType !== undefined && Boolean(typeis.is(contentType, [...types]));
  const untyped = stream?.orNoContentType === true && contentType === undefined;
  const streamed = stream !== undefined && (untyped || isType(stream.mediaTypes));
  if ((body || stream) && !streamed && !(body && isType(['application/json']))) {
    const own = stream && !body ? stream.mediaTypes : stream ? [stream.mediaTypes[0]] : [];
    const accepted = [...(body ? ['application/json'] : []), ...own, ...(stream?.orNoContentType ? ['none'] : [])];
    throw new UnsupportedMediaTypeError(
      `Content-Type must be ${accepted.join(' or ')} (got ${req.header('content-type') ?? 'none'})`,
    );
  }
  const path = params ? parsePath(route, params, req.params) : {};
  const parsedQuery = query ? parseOrThrow(query, req.query, 'query') : {};
  const headers = parseHeaders(route, req);
  return {
    params: path,
    query: parsedQuery,
    headers,
    body: body && !streamed ? parseOrThrow(body.schema, req.body, body.what) : undefined,
    idempotencyKey: headers['Idempotency-Key'] as string | undefined,
  };
}

/** The headers a route reads: its own, plus `Idempotency-Key` when it creates work. */
export function requestHeaders(route: ApiRoute): z.ZodObject | undefined {
  const own = route.request?.headers;
  if (!route.createsWork) return own;
  return (own ?? z.object({})).extend(IdempotencyKeyHeader.shape);
}

/** The declared headers, read case-insensitively, parsed under their declared names. */
function parseHeaders(route: ApiRoute, req: Request): Record<string, unknown> {
  const schema = requestHeaders(route);
  if (!schema) return {};
  const raw: Record<string, string> = {};
  for (const name of Object.keys(schema.shape)) {
    const value = req.header(name);
    if (value !== undefined) raw[name] = value;
  }
  return parseOrThrow(schema, raw, 'headers');
}

function parsePath(route: ApiRoute, schema: z.ZodObject, params: Request['params']): Record<string, unknown> {
  const parsed = schema.safeParse(params);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const name = String(issue.path[0]);
  if (route.badRequestParams?.includes(name)) {
    throw new InvalidRequestError(issue.message, [{ path: [name], message: issue.message }]);
  }
  throw new NotFoundError(issue.message);
}
