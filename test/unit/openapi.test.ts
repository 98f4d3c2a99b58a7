// GET /openapi.json and /docs: the document validates with a maintained OpenAPI validator, documents exactly the
// routes the Express app registers, and the docs page with its assets is served from disk (no CDN). Temporal is
// not needed: the API connects lazily and these routes never call it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { compileErrors, validate } from '@readme/openapi-parser';
import type { Express } from 'express';
import { buildOpenApiDocument } from '../../src/api/openapi.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { freePort, testConfig, testLog } from '../helpers/temporal.js';

type Doc = ReturnType<typeof buildOpenApiDocument> & { paths: Record<string, Record<string, any>> };

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

/** Routes under /docs/ are the Swagger UI's own files (its page, script and styles), not part of the API. */
const UI_ASSET_ROUTE = /^\/docs\/./;

/** `METHOD /path/{param}` of every route in the app's router stack (routers mounted at the root, as createApp does). */
function registeredRoutes(app: Express): string[] {
  const routes: string[] = [];
  const visit = (stack: any[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths: string[] = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const p of paths) {
          for (const [method, on] of Object.entries(layer.route.methods as Record<string, boolean>)) {
            if (on && method !== '_all')
              routes.push(`${method.toUpperCase()} ${(prefix + p).replace(/:(\w+)/g, '{$1}')}`);
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

describe('OpenAPI document and docs page', () => {
  let api: StartedServer;
  let doc: Doc;

  before(async () => {
    // API keys configured: the document and the docs page must still be public. Temporal is never reached.
    const config = testConfig(`127.0.0.1:${await freePort()}`, { API_KEYS: 'key-aaaaaaaaaaaaaaaa=acme' });
    api = await startServer(config, testLog);
    doc = buildOpenApiDocument() as Doc;
  });

  after(async () => {
    await api?.close();
  });

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
  });

  test('the named request, response and error schemas are components, and errors use the one error shape', () => {
    const schemas = (doc as any).components.schemas as Record<string, any>;
    for (const name of [
      'CreateBatchRequest',
      'BatchOptions',
      'WebhookRegistration',
      'CreateBatchResponse',
      'BatchResource',
      'ItemsPage',
      'ItemView',
      'BatchListPage',
      'FailedDelivery',
      'ErrorBody',
      'PredictRequest',
      'KServeInferRequest',
    ]) {
      assert.ok(schemas[name], `components.schemas.${name}`);
    }
    // Request schemas are documented as zod parses them: defaulted options are optional.
    assert.deepEqual(schemas.BatchOptions.required ?? [], []);
    assert.equal(schemas.BatchOptions.properties.initialIntervalMs.minimum, 1000);
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const where = `${method.toUpperCase()} ${p}`;
        const isPublic = Array.isArray(op.security) && op.security.length === 0;
        if (!isPublic) assert.ok(op.responses['401'], `${where} documents 401`);
        for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
          if (Number(status) < 400 || !response.$ref) continue;
          const expected = /^\/v2(\/models\/|$)/.test(p) ? /\/V2\w+$/ : /\/(?!V2)\w+$/;
          assert.match(response.$ref, expected, `${where} ${status}: the error shape of its protocol`);
        }
        const createsWork =
          method === 'post' && /^\/(v1\/batches|v1\/predict(\/async)?|v2\/models\/.*\/infer)$/.test(p);
        const idempotencyKey = (op.parameters ?? []).some(
          (x: any) => x.$ref === '#/components/parameters/IdempotencyKey',
        );
        assert.equal(idempotencyKey, createsWork, `${where}: Idempotency-Key documented iff it creates work`);
      }
    }
    assert.equal((doc as any).components.securitySchemes.apiKey.scheme, 'bearer');
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
