import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { RouteDeps } from './deps.js';

// A route is declared once: method, path, request and response schemas, statuses and handler. mount-routes.ts
// serves it (parsing the request with these schemas, handing the parsed values to the handler) and openapi.ts
// documents it, so no route is served without its document entry, nor documented without being served.

/** Statuses answered with the error shape (the house one, or the protocol's under /v2). */
export type ErrorStatus = 400 | 401 | 404 | 409 | 413 | 415 | 422 | 429 | 503 | 504;

export type Tag =
  | 'Batches'
  | 'Batch streams'
  | 'Predictions'
  | 'Models'
  | 'Open Inference Protocol'
  | 'OpenAI-compatible'
  | 'Operations';

/** Headers a response may document (openapi.ts describes each once). */
export type ResponseHeader = 'Location' | 'Retry-After' | 'WWW-Authenticate';

/** A response other than an error: its bodies by media type (one line of a stream) and its headers. */
export interface ResponseSpec {
  description: string;
  content?: Record<string, z.ZodType>;
  headers?: readonly ResponseHeader[];
}

/** A JSON request body: its schema, and what messages call it (`invalid <what>: ...`). */
export interface JsonBody<T extends z.ZodType = z.ZodType> {
  schema: T;
  what: string;
  description?: string;
}

/**
 * A body the handler reads itself: line by line (NDJSON; `line` documents one line), or whole (a stream with no
 * JSON body beside it, which the app's JSON parser leaves alone; `line` documents its JSON part).
 */
export interface StreamBody {
  mediaTypes: readonly string[];
  line: z.ZodType;
  description: string;
  /** A body without Content-Type is taken too (the Open Inference Protocol's clients send none). */
  orNoContentType?: true;
}

type Out<S> = S extends z.ZodType ? z.output<S> : Record<string, never>;

/** What a handler receives: every declared part of the request, parsed. */
export interface RouteInput<P, Q, H, B, S> {
  params: Out<P>;
  query: Out<Q>;
  headers: Out<H>;
  /** The parsed JSON body; undefined when the body is a declared stream, which the handler reads from `req`. */
  body: B extends JsonBody<infer T> ? (S extends StreamBody ? z.output<T> | undefined : z.output<T>) : undefined;
  /** The request's `Idempotency-Key`, on routes that create work. */
  idempotencyKey: string | undefined;
}

export interface RouteContext {
  req: Request;
  res: Response;
  deps: RouteDeps;
}

export interface RouteSpec<P, Q, H, B, S> {
  method: 'get' | 'post' | 'delete';
  /** Express syntax (`/v1/batches/:id`); documented as `/v1/batches/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: Tag;
  /** No API key needed (probes, metrics, this document): mounted before authentication. */
  public?: true;
  /**
   * Starts work: the per-key rate limit applies (429) and an `Idempotency-Key` header makes it safe to retry
   * (409 while the first request runs, 422 when the key was used with another request).
   */
  createsWork?: true;
  request?: { params?: P; query?: Q; headers?: H; body?: B; stream?: S };
  /**
   * Path parameters whose malformed value is the request's fault (400). Any other malformed path parameter
   * names nothing that could exist, so it is 404 like an unknown one; its schema's message says what.
   */
  badRequestParams?: readonly string[];
  /** Every answer that is not an error, by status. */
  responses: Partial<Record<number, ResponseSpec>>;
  /** Error statuses the handler itself produces; those of parsing, auth and rate limit are added (error-statuses.ts). */
  errors?: readonly ErrorStatus[];
  handler: (input: RouteInput<P, Q, H, B, S>, context: RouteContext) => Promise<void> | void;
}

/** A declared route with its types erased, as route tables hold it. */
export type ApiRoute = RouteSpec<
  z.ZodObject | undefined,
  z.ZodObject | undefined,
  z.ZodObject | undefined,
  JsonBody | undefined,
  StreamBody | undefined
>;

/**
 * Declares a route. Fails at start when the path's `:params` and the params schema's keys differ, so the
 * document's path template and the parameters it lists always agree.
 */
export function defineRoute<
  P extends z.ZodObject | undefined = undefined,
  Q extends z.ZodObject | undefined = undefined,
  H extends z.ZodObject | undefined = undefined,
  B extends JsonBody | undefined = undefined,
  S extends StreamBody | undefined = undefined,
>(spec: RouteSpec<P, Q, H, B, S>): ApiRoute {
  const inPath = pathParams(spec.path).sort();
  const declared = Object.keys(spec.request?.params?.shape ?? {}).sort();
  if (inPath.join() !== declared.join()) {
    throw new Error(`${spec.operationId}: path ${spec.path} has params [${inPath}], its schema [${declared}]`);
  }
  return spec as unknown as ApiRoute;
}

/** The `:name` parameters of an Express path. */
export function pathParams(path: string): string[] {
  return [...path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
}

/** An Express path as an OpenAPI path template: `/v1/batches/:id` -> `/v1/batches/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}

/** A JSON response. */
export function json(schema: z.ZodType, description: string, headers?: readonly ResponseHeader[]): ResponseSpec {
  return { description, content: { 'application/json': schema }, ...(headers ? { headers } : {}) };
}
