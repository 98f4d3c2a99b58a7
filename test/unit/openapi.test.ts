// GET /openapi.json and /docs: the document is generated from the route declarations (src/api/route.ts) and
// validates with a maintained OpenAPI validator; it documents exactly the routes the Express app registers,
// each with the parameters (name, location, required, pattern) and statuses of its declaration; and the real
// server answers probes of every route with statuses the document lists and bodies its schemas accept. Temporal
// is not needed: the API connects lazily and no probe here reaches it.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { compileErrors, dereference, validate } from '@readme/openapi-parser';
import type { Express } from 'express';
import { z } from 'zod';
import { ErrorBody } from '../../src/contracts/http-error.js';
import {
  MAX_API_KEY_LENGTH,
  MAX_ITEM_ID_LENGTH,
  MAX_LIST_CURSOR_LENGTH,
  MAX_OPTIONS_HEADER_LENGTH,
  MAX_WEBHOOK_URL_LENGTH,
  METADATA_MAX_KEY_LENGTH,
  METADATA_MAX_KEYS,
  METADATA_MAX_VALUE_LENGTH,
  MODEL_NAME,
  MODEL_VERSION,
  WEBHOOK_URL_SCHEME,
} from '../../src/contracts/limits.js';
import { DeliveryError, WebhookUrl } from '../../src/contracts/webhook.js';
import { KServeErrorResponse } from '../../src/contracts/predict.js';
import { IdempotencyKeyHeader } from '../../src/api/idempotency.js';
import { buildOpenApiDocument } from '../../src/api/openapi.js';
import { openApiPath, type ApiRoute } from '../../src/api/route.js';
import { API_ROUTES } from '../../src/api/routes/index.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { freePort, testConfig, testLog } from '../helpers/temporal.js';

/** The parts of the document these tests read. */
interface Doc {
  openapi: string;
  paths: Record<string, Record<string, any>>;
  components: Record<string, any>;
}

const API_KEY = 'key-aaaaaaaaaaaaaaaa';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

/** Routes under /docs/ are the Swagger UI's own files (its page, script and styles), not part of the API. */
const UI_ASSET_ROUTE = /^\/docs\/./;

/** A valid value of each path parameter (the repository's digits model, version 1; ids nobody has). */
const VALID_PARAM: Record<string, string> = {
  id: '0123456789abcdef0123',
  itemId: 'a',
  taskId: '0123456789abcdef0123',
  name: 'digits',
  version: '1',
  fileId: 'file-0123456789abcdef0123',
  batchId: 'batch_0123456789abcdef0123',
};

/** Candidates for a value a parameter's schema refuses; the first one it refuses is sent. */
const MALFORMED = ['not-an-id', 'two words', 'x'.repeat(300), '0'];

/** Routes whose handlers ask Temporal (readiness): probing them unauthenticated would wait for its timeout. */
const ASKS_TEMPORAL_WITHOUT_KEY = new Set(['readiness', 'kserveReady']);

/** `METHOD /path/{param}` of every route in the app's router stack (routers mounted at the root, as createApp does). */
function registeredRoutes(app: Express): string[] {
  const routes: string[] = [];
  const visit = (stack: any[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths: string[] = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const p of paths) {
          for (const [method, on] of Object.entries(layer.route.methods as Record<string, boolean>)) {
            if (on && method !== '_all') routes.push(`${method.toUpperCase()} ${openApiPath(prefix + p)}`);
          }
        }
      } else if (Array.isArray(layer.handle?.stack)) {
        assert.ok(
          layer.rawPath === undefined || layer.rawPath === '/',
          `a router mounted at ${layer.rawPath}: extend this walk`,
        );
        visit(layer.handle.stack, prefix);
      }
    }
  };
  visit((app as any).router.stack, '');
  return [...new Set(routes)].sort();
}

function documentedRoutes(doc: Doc): string[] {
  return Object.entries(doc.paths)
    .flatMap(([p, item]) =>
      Object.keys(item)
        .filter((k) => METHODS.includes(k))
        .map((m) => `${m.toUpperCase()} ${p}`),
    )
    .sort();
}

interface Param {
  name: string;
  in: string;
  required: boolean;
  pattern?: string;
}

/** The parameters a declaration implies, read with zod's own JSON Schema conversion (not the generator's). */
function declaredParameters(route: ApiRoute): Param[] {
  const out: Param[] = [];
  const add = (schema: z.ZodObject | undefined, location: string) => {
    for (const [name, field] of Object.entries(schema?.shape ?? {})) {
      const json = z.toJSONSchema(field as z.ZodType, { io: 'input', unrepresentable: 'any' }) as { pattern?: string };
      const required = location === 'path' || !(field as z.ZodType).safeParse(undefined).success;
      out.push({ name, in: location, required, ...(json.pattern ? { pattern: json.pattern } : {}) });
    }
  };
  add(route.request?.params, 'path');
  add(route.request?.query, 'query');
  add(route.request?.headers, 'header');
  if (route.createsWork) add(IdempotencyKeyHeader, 'header');
  return sortParams(out);
}

function sortParams(params: Param[]): Param[] {
  return params.sort((a, b) => `${a.in} ${a.name}`.localeCompare(`${b.in} ${b.name}`));
}

/**
 * The statuses a declaration implies: its own responses and errors, and those of what is mounted before its
 * handler: auth (401 unless public), the rate limit and Idempotency-Key (429, 409, 422), a body (415, 413,
 * 400), query and header parsing (400), and path parameters (404, or 400 for badRequestParams).
 */
function declaredStatuses(route: ApiRoute): string[] {
  const statuses = new Set<number>([...Object.keys(route.responses).map(Number), ...(route.errors ?? [])]);
  const { params, query, headers, body, stream } = route.request ?? {};
  if (!route.public) statuses.add(401);
  if (route.createsWork) [400, 409, 422, 429].forEach((s) => statuses.add(s));
  if (body || stream) [400, 413, 415].forEach((s) => statuses.add(s));
  if (query || headers) statuses.add(400);
  for (const name of Object.keys(params?.shape ?? {})) statuses.add(route.badRequestParams?.includes(name) ? 400 : 404);
  return [...statuses].map(String).sort();
}

/** `path` with each `:param` replaced by the given value or its valid sample. */
function fillPath(route: ApiRoute, values: Record<string, string> = {}): string {
  return route.path.replace(/:(\w+)/g, (_, name: string) => {
    const value = values[name] ?? VALID_PARAM[name];
    assert.ok(value !== undefined, `no sample value for path parameter '${name}' of ${route.operationId}`);
    return encodeURIComponent(value);
  });
}

/** The first candidate value the field's schema refuses, if any. */
function malformedValue(field: z.ZodType): string | undefined {
  return MALFORMED.find((v) => !field.safeParse(v).success);
}

/** A request with any method (fetch refuses TRACE), without an API key. */
function rawRequest(url: string, method: string): Promise<{ status: number; allow?: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('OpenAPI document and docs page', () => {
  let api: StartedServer;
  let doc: Doc;
  let resolved: Doc;

  before(async () => {
    // API keys configured: the document and the docs page must still be public. Temporal is never reached.
    const config = testConfig(`127.0.0.1:${await freePort()}`, { API_KEYS: `${API_KEY}=acme` });
    api = await startServer(config, testLog);
    doc = buildOpenApiDocument(API_ROUTES) as unknown as Doc;
    resolved = (await dereference(structuredClone(doc) as Parameters<typeof dereference>[0])) as unknown as Doc;
  });

  after(async () => {
    await api?.close();
  });

  const operation = (route: ApiRoute, from = doc) => {
    const op = from.paths[openApiPath(route.path)]?.[route.method];
    assert.ok(op, `${route.method.toUpperCase()} ${openApiPath(route.path)} is documented`);
    return op;
  };

  /** Sends a request to a route and checks the answer against its document entry and its declaration. */
  async function probe(
    route: ApiRoute,
    init: {
      params?: Record<string, string>;
      query?: string;
      headers?: Record<string, string>;
      body?: string;
      key?: boolean;
    },
  ): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = {
      ...(init.key === false ? {} : { authorization: `Bearer ${API_KEY}` }),
      ...init.headers,
    };
    const url = `${api.url}${fillPath(route, init.params)}${init.query ?? ''}`;
    const res = await fetch(url, { method: route.method.toUpperCase(), headers, body: init.body });
    const where = `${route.method.toUpperCase()} ${url.slice(api.url.length)}`;
    const text = await res.text();
    const status = String(res.status);
    assert.ok(
      operation(route).responses[status],
      `${where} answered ${status}, which its document does not list: ${text}`,
    );
    const contentType = res.headers.get('content-type') ?? '';
    const declared = route.responses[res.status];
    if (declared) {
      const [type, schema] = Object.entries(declared.content ?? {}).find(([t]) => contentType.startsWith(t)) ?? [];
      assert.ok(type || !declared.content, `${where}: content type ${contentType} is not one declared for ${status}`);
      if (type === 'application/json') {
        const raw = JSON.parse(text);
        const parsed = schema!.safeParse(raw);
        assert.ok(parsed.success, `${where}: the ${status} body fits its schema: ${parsed.error?.message}`);
        // Parsing strips keys a schema does not know: a body with undocumented fields differs from its parse.
        assert.deepEqual(raw, parsed.data, `${where}: the ${status} body holds only documented fields`);
      }
      return { status: res.status, body: type === 'application/json' ? JSON.parse(text) : text };
    }
    assert.match(contentType, /^application\/json/, `${where}: an error is JSON`);
    const body = JSON.parse(text);
    const shape = route.path.startsWith('/v2') ? KServeErrorResponse.strict() : ErrorBody;
    assert.ok(shape.safeParse(body).success, `${where}: ${status} in the error shape of its protocol: ${text}`);
    return { status: res.status, body };
  }

  test('the document is valid OpenAPI 3.1 according to @readme/openapi-parser', async () => {
    assert.equal(doc.openapi, '3.1.0');
    const result = await validate(structuredClone(doc) as Parameters<typeof validate>[0]);
    assert.ok(result.valid, result.valid ? '' : compileErrors(result));
    assert.deepEqual(result.warnings, []);
  });

  test('every route the app registers is documented, and every documented route is registered', () => {
    const app = api.server.listeners('request')[0] as Express;
    const registered = registeredRoutes(app).filter((r) => !UI_ASSET_ROUTE.test(r.split(' ')[1]!));
    assert.ok(registered.length > 20, `found only ${registered.length} routes: the router walk is broken`);
    const documented = documentedRoutes(doc);
    assert.deepEqual(
      {
        undocumented: registered.filter((r) => !documented.includes(r)),
        notServed: documented.filter((r) => !registered.includes(r)),
      },
      { undocumented: [], notServed: [] },
    );
    const declared = API_ROUTES.map((r) => `${r.method.toUpperCase()} ${openApiPath(r.path)}`).sort();
    assert.deepEqual(declared, documented, 'the document lists the declarations, once each');
  });

  test('each operation documents the parameters of its declaration: names, location, required, pattern', () => {
    for (const route of API_ROUTES) {
      const op = operation(route, resolved);
      const documented = sortParams(
        (op.parameters ?? []).map((p: any) => ({
          name: p.name,
          in: p.in,
          required: p.required === true,
          ...(p.schema?.pattern ? { pattern: p.schema.pattern } : {}),
        })),
      );
      assert.deepEqual(documented, declaredParameters(route), `${route.operationId}: parameters`);
      const templated = [...openApiPath(route.path).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      const inPath = documented
        .filter((p) => p.in === 'path')
        .map((p) => p.name)
        .sort();
      assert.deepEqual(inPath, templated, `${route.operationId}: the path template names its path parameters`);
    }
    // The patterns that matter most are there (a regression in the declarations, not just in the generator).
    const byId = (id: string) => API_ROUTES.find((r) => r.operationId === id)!;
    assert.ok(declaredParameters(byId('getBatch')).some((p) => p.name === 'id' && p.pattern === '^[0-9a-f]{20}$'));
    assert.ok(declaredParameters(byId('getTask')).some((p) => p.name === 'taskId' && p.pattern === '^[0-9a-f]{20}$'));
  });

  test('each operation documents the statuses of its declaration, errors in the shape of its protocol', () => {
    for (const route of API_ROUTES) {
      const op = operation(route);
      const where = route.operationId;
      assert.deepEqual(Object.keys(op.responses).sort(), declaredStatuses(route), `${where}: statuses`);
      for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
        const declared = route.responses[Number(status)];
        if (declared) {
          assert.equal(response.$ref, undefined, `${where} ${status}: declared inline`);
          assert.deepEqual(Object.keys(response.content ?? {}).sort(), Object.keys(declared.content ?? {}).sort());
          continue;
        }
        const expected = route.path.startsWith('/v2') ? /\/V2\w+$/ : /\/(?!V2)\w+$/;
        assert.match(response.$ref, expected, `${where} ${status}: the error shape of its protocol`);
      }
      assert.equal(Array.isArray(op.security) && op.security.length === 0, route.public === true, `${where}: public`);
    }
  });

  test('key routes document the statuses the API promises (a table written by hand, not derived)', () => {
    const expected: Record<string, string> = {
      liveness: '200',
      readiness: '200 503',
      createBatch: '202 400 401 409 413 415 422 429 503',
      getBatch: '200 401 404 503',
      streamEvents: '200 204 400 401 404 503',
      retryFailed: '200 401 404 409 503',
      predict: '200 400 401 409 413 415 422 429 503 504',
      getTask: '200 401 404 503',
      kserveInfer: '200 400 401 404 409 413 415 422 429 503 504',
    };
    for (const [id, statuses] of Object.entries(expected)) {
      const route = API_ROUTES.find((r) => r.operationId === id);
      assert.ok(route, id);
      assert.equal(Object.keys(operation(route).responses).sort().join(' '), statuses, id);
    }
  });

  test('the named request, response and error schemas are components', () => {
    const schemas = (doc as any).components.schemas as Record<string, any>;
    for (const name of [
      'CreateBatchRequest',
      'BatchOptions',
      'WebhookRegistration',
      'CreateBatchResponse',
      'BatchResource',
      'ItemsPage',
      'ItemView',
      'ItemOutcome',
      'BatchProgress',
      'BatchListPage',
      'FailedDelivery',
      'ErrorBody',
      'Health',
      'Readiness',
      'PredictRequest',
      'KServeInferRequest',
      'KServeErrorResponse',
    ]) {
      assert.ok(schemas[name], `components.schemas.${name}`);
    }
    // Request schemas are documented as zod parses them: defaulted options are optional.
    assert.deepEqual(schemas.BatchOptions.required ?? [], []);
    assert.equal(schemas.BatchOptions.properties.initialIntervalMs.minimum, 1000);
    assert.deepEqual(schemas.CreateBatchRequest.properties.options.$ref, '#/components/schemas/BatchOptions');
    assert.equal((doc as any).components.securitySchemes.apiKey.scheme, 'bearer');
  });

  test('the limits on what a client controls are in the document, as limits.ts sets them', () => {
    const schemas = (doc as any).components.schemas as Record<string, any>;
    const param = (id: string, where: string, name: string) => {
      const route = API_ROUTES.find((r) => r.operationId === id)!;
      const found = (operation(route).parameters ?? []).find((p: any) => p.in === where && p.name === name);
      assert.ok(found, `${id}: ${where} parameter ${name}`);
      return found.schema;
    };
    const batch = schemas.CreateBatchRequest.properties;
    assert.deepEqual(
      {
        maxProperties: batch.metadata.maxProperties,
        keys: batch.metadata.propertyNames?.maxLength,
        values: batch.metadata.additionalProperties?.maxLength,
      },
      { maxProperties: METADATA_MAX_KEYS, keys: METADATA_MAX_KEY_LENGTH, values: METADATA_MAX_VALUE_LENGTH },
      'metadata',
    );
    assert.equal(batch.model.pattern, MODEL_NAME.source);
    assert.equal(schemas.BatchItem.properties.id.maxLength, MAX_ITEM_ID_LENGTH);
    assert.ok(schemas.BatchItem.properties.id.pattern, 'item ids: no control characters');
    assert.equal(schemas.WebhookRegistration.properties.url.maxLength, MAX_WEBHOOK_URL_LENGTH);
    assert.deepEqual(schemas.FailedDelivery.properties.lastError.enum, Object.values(DeliveryError));
    assert.equal(param('listBatches', 'query', 'model').pattern, MODEL_NAME.source);
    assert.equal(param('listBatches', 'query', 'cursor').maxLength, MAX_LIST_CURSOR_LENGTH);
    assert.equal(param('createBatch', 'query', 'model').pattern, MODEL_NAME.source);
    assert.equal(param('createBatch', 'header', 'Batchline-Model').pattern, MODEL_NAME.source);
    assert.equal(param('createBatch', 'header', 'Batchline-Version').pattern, MODEL_VERSION.source);
    assert.equal(param('createBatch', 'header', 'Batchline-Options').maxLength, MAX_OPTIONS_HEADER_LENGTH);
    assert.match((doc as any).components.securitySchemes.apiKey.description, new RegExp(`${MAX_API_KEY_LENGTH}`));
  });

  test('a webhook URL is documented as the schema refuses it: format uri, http(s) pattern, min and max length', () => {
    const schemas = (doc as any).components.schemas as Record<string, any>;
    const route = API_ROUTES.find((r) => r.operationId === 'createBatch')!;
    const query = (operation(route).parameters ?? []).find((p: any) => p.in === 'query' && p.name === 'webhook');
    for (const [where, url] of [
      ['WebhookRegistration.url', schemas.WebhookRegistration.properties.url],
      ['createBatch ?webhook=', query?.schema],
    ] as const) {
      assert.deepEqual(
        { format: url?.format, pattern: url?.pattern, minLength: url?.minLength, maxLength: url?.maxLength },
        { format: 'uri', pattern: WEBHOOK_URL_SCHEME.source, minLength: 1, maxLength: MAX_WEBHOOK_URL_LENGTH },
        where,
      );
    }
    // What the document refuses, the schema refuses (the empty string was documented as any string, and refused).
    for (const bad of ['', 'ftp://example.com/hook', 'example.com/hook', 'https://', 'https://user:pw@example.com/']) {
      assert.equal(WebhookUrl.safeParse(bad).success, false, JSON.stringify(bad));
    }
    assert.equal(WebhookUrl.safeParse('https://hooks.example.com/batchline').success, true);
  });

  test('parameters are documented as they are parsed: never null, NDJSON options with their bounds and values', () => {
    const schemas = (doc as any).components.schemas as Record<string, any>;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const p of op.parameters ?? []) {
          const types = [p.schema?.type].flat();
          assert.ok(!types.includes('null'), `${method} ${path} ${p.in}:${p.name} is never null: ${JSON.stringify(p)}`);
        }
      }
    }
    const route = API_ROUTES.find((r) => r.operationId === 'createBatch')!;
    const query = (name: string) =>
      (operation(route).parameters ?? []).find((p: any) => p.in === 'query' && p.name === name)?.schema;
    for (const [name, option] of Object.entries(schemas.BatchOptions.properties as Record<string, any>)) {
      const keywords = ['type', 'minimum', 'maximum', 'enum', 'default'] as const;
      const pick = (schema: any) => Object.fromEntries(keywords.map((k) => [k, schema?.[k]]));
      assert.deepEqual(pick(query(name)), pick(option), `?${name}= as BatchOptions.${name}`);
    }
  });

  test('a declared path asked with a method it does not serve is 405 with Allow, before authentication', async () => {
    const byPath = new Map<string, ApiRoute[]>();
    for (const route of API_ROUTES) byPath.set(route.path, [...(byPath.get(route.path) ?? []), route]);
    let probed = 0;
    for (const [path, routes] of byPath) {
      const url = `${api.url}${fillPath(routes[0]!)}`;
      const documented = Object.keys(doc.paths[openApiPath(path)]!)
        .filter((k) => METHODS.includes(k))
        .map((m) => m.toUpperCase());
      // Allow lists the documented methods in RFC 9110's order, HEAD where GET is, and OPTIONS.
      const allow = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
        .filter((m) => documented.includes(m) || (m === 'HEAD' && documented.includes('GET')) || m === 'OPTIONS')
        .join(', ');
      for (const method of ['TRACE', 'PUT', 'DELETE', 'PATCH', 'GET', 'POST']) {
        if (documented.includes(method)) continue;
        const res = await rawRequest(url, method);
        const where = `${method} ${path}`;
        assert.equal(res.status, 405, `${where}: ${res.text}`);
        assert.equal(res.allow, allow, `${where}: Allow`);
        const body = JSON.parse(res.text);
        if (path.startsWith('/v2')) {
          assert.ok(
            KServeErrorResponse.strict().safeParse(body).success,
            `${where}: the protocol's shape: ${res.text}`,
          );
        } else {
          assert.ok(ErrorBody.safeParse(body).success, `${where}: the house shape: ${res.text}`);
          assert.equal(body.error.code, 'method_not_allowed');
        }
        probed++;
      }
      const options = await rawRequest(url, 'OPTIONS');
      assert.deepEqual({ status: options.status, allow: options.allow }, { status: 204, allow }, `OPTIONS ${path}`);
      if (!documented.includes('GET')) assert.equal((await rawRequest(url, 'HEAD')).status, 405, `HEAD ${path}`);
    }
    assert.ok(probed >= 4 * byPath.size, `${probed} requests probed`);
    // HEAD is served wherever GET is; a path nobody declared falls through (to auth, then 404): no 405, no Allow.
    assert.equal((await rawRequest(`${api.url}/healthz`, 'HEAD')).status, 200);
    for (const path of ['/v1/no-such-path', '/v2/no-such-path']) {
      const res = await rawRequest(`${api.url}${path}`, 'TRACE');
      assert.deepEqual({ status: res.status, allow: res.allow }, { status: 401, allow: undefined }, path);
    }
  });

  test('without an API key every route but the public ones answers 401, and the public ones answer', async () => {
    for (const route of API_ROUTES) {
      if (route.public && ASKS_TEMPORAL_WITHOUT_KEY.has(route.operationId)) continue;
      const { status } = await probe(route, { key: false });
      if (route.public) assert.notEqual(status, 401, `${route.operationId} is public`);
      else assert.equal(status, 401, `${route.operationId} needs an API key`);
    }
  });

  test('a malformed path parameter is 404 (400 where declared), before anything is looked up', async () => {
    let probed = 0;
    for (const route of API_ROUTES) {
      for (const [name, field] of Object.entries(route.request?.params?.shape ?? {})) {
        const value = malformedValue(field as z.ZodType);
        assert.ok(value !== undefined, `${route.operationId}: no malformed candidate for '${name}'`);
        const body = route.request?.body ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {};
        const { status } = await probe(route, { params: { [name]: value }, ...body });
        assert.equal(
          status,
          route.badRequestParams?.includes(name) ? 400 : 404,
          `${route.operationId} ${name}=${value}`,
        );
        probed++;
      }
    }
    assert.ok(probed >= 15, `${probed} path parameters probed`);
  });

  test('an unknown query parameter, or a malformed declared header, is a 400 naming it', async () => {
    for (const route of API_ROUTES) {
      const body = route.request?.body ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {};
      if (route.request?.query) {
        const res = await probe(route, { query: '?colour=red', ...body });
        assert.equal(res.status, 400, `${route.operationId} ?colour=red`);
        assert.match(res.body.error.message, /colour/);
      }
      const headers = { ...route.request?.headers?.shape, ...(route.createsWork ? IdempotencyKeyHeader.shape : {}) };
      for (const [name, field] of Object.entries(headers)) {
        const value = malformedValue(field as z.ZodType);
        if (value === undefined) continue; // any string will do
        const res = await probe(route, { ...body, headers: { ...body.headers, [name]: value } });
        assert.equal(res.status, 400, `${route.operationId} ${name}: ${value}`);
        if (!route.path.startsWith('/v2')) assert.deepEqual(res.body.error.details?.[0]?.path, [name]);
      }
    }
  });

  test('a body route refuses another media type (415) and a body its schema refuses (400)', async () => {
    for (const route of API_ROUTES.filter((r) => r.request?.body)) {
      const wrongType = await probe(route, { headers: { 'content-type': 'text/plain' }, body: '{}' });
      assert.equal(wrongType.status, 415, `${route.operationId} text/plain`);
      const wrongBody = await probe(route, { headers: { 'content-type': 'application/json' }, body: '[1]' });
      assert.equal(wrongBody.status, 400, `${route.operationId} [1]`);
    }
  });

  test('the routes that need no Temporal answer 200 with bodies their schemas accept', async () => {
    const byId = (id: string) => API_ROUTES.find((r) => r.operationId === id)!;
    for (const id of [
      'liveness',
      'kserveLive',
      'metrics',
      'openapi',
      'docs',
      'listModels',
      'getModel',
      'kserveServerMetadata',
      'kserveModelMetadata',
      'kserveModelMetadataVersion',
      'kserveModelReady',
      'kserveModelReadyVersion',
    ]) {
      assert.equal((await probe(byId(id), {})).status, 200, id);
    }
    assert.equal((await probe(byId('getModel'), { params: { name: 'no-such-model' } })).status, 404);
    assert.equal((await probe(byId('kserveModelMetadata'), { params: { name: 'no-such-model' } })).status, 404);
  });

  test('GET /openapi.json serves the document without an API key', async () => {
    const res = await fetch(`${api.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), JSON.parse(JSON.stringify(doc)));
  });

  test('GET /docs serves the Swagger UI page, and every asset it loads, from this server', async () => {
    const page = await fetch(`${api.url}/docs`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no asset from another host: the page works offline');
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    const scripts = assets.filter((a) => a.endsWith('.js'));
    assert.deepEqual(scripts, [
      '/docs/swagger-ui-bundle.js',
      '/docs/swagger-ui-standalone-preset.js',
      '/docs/swagger-initializer.js',
    ]);
    for (const asset of assets) {
      const res = await fetch(`${api.url}${asset}`);
      assert.equal(res.status, 200, asset);
      const body = await res.text();
      assert.ok(body.length > 0, `${asset} is empty`);
      if (asset.endsWith('.js')) assert.match(res.headers.get('content-type') ?? '', /javascript/, asset);
      if (asset.endsWith('.css')) assert.match(res.headers.get('content-type') ?? '', /^text\/css/, asset);
      if (asset === '/docs/swagger-initializer.js') assert.match(body, /url: '\/openapi\.json'/);
    }
    const other = await fetch(`${api.url}/docs/package.json`);
    assert.equal(
      other.status,
      401,
      'only the page’s own files of swagger-ui-dist are public; the rest falls through to auth',
    );
  });
});
