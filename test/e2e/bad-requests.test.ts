// Bad requests against the real stack (dev server, worker, API with two tenants and small limits): each one is
// answered with the right 4xx (or 503) and error code, the field path where one applies, the one error shape
// (the protocol's on /v2) and no stack trace; afterwards the API is healthy and nothing was queued by them.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { ErrorBody } from '../../src/api/openapi.js';
import type { Config } from '../../src/config.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { itemStoreFile } from '../../src/stores/sqlite-item-store.js';
import { startWorker, type StartedWorker } from '../../src/worker.js';
import { heldout } from '../helpers/data.js';
import {
  freePort,
  quietTemporalLogs,
  startTestTemporal,
  testConfig,
  testLog,
  waitFor,
  workflowBundle,
  type TestTemporal,
} from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

const ACME = 'key-aaaaaaaaaaaaaaaa';
const GLOBEX = 'key-bbbbbbbbbbbbbbbb';
const LIMITS = { API_KEYS: `${ACME}=acme,${GLOBEX}=globex`, MAX_BATCH_ITEMS: '50', MAX_BODY_BYTES: '65536' };
const REUSED_KEY = 'bad-requests-reused-key';

const row = heldout('digits')[0]!.inputs.input;
const item = (id = 'a', input: unknown = row) => ({ id, inputs: { input } });
const batch = (over: Record<string, unknown> = {}) => ({ model: 'digits', items: [item()], ...over });
const items = (n: number) => Array.from({ length: n }, (_, i) => item(`r${i}`));
const ndjson = (...lines: unknown[]) =>
  lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
const nested = (depth: number) => '['.repeat(depth) + '0' + ']'.repeat(depth);
/** Raw JSON text with a number JSON.parse turns into ±Infinity. */
const withInfinity = (text: string) => text.replace('"INF"', '1e999');

const asJson = { 'content-type': 'application/json' };

/** The /v2 (Open Inference Protocol) error shape. */
const KServeError = z.object({ error: z.string() }).strict();

interface BadRequest {
  name: string;
  /** Default: POST with a body, GET without. */
  method?: string;
  /** A function for paths that name a batch made in before(). */
  path: string | (() => string);
  /** Serialised as JSON with Content-Type application/json. */
  json?: unknown;
  /** Sent as is; Content-Type only from `headers`. */
  raw?: string | Uint8Array;
  /** Sent as application/x-ndjson. */
  ndjson?: string;
  /** The API key; null sends no Authorization header. Default: acme's. */
  key?: string | null;
  headers?: Record<string, string>;
  server?: 'main' | 'rateLimited' | 'noTemporal';
  status: number;
  code: string;
  /** A field path some detail must name. */
  at?: (string | number)[];
  message?: RegExp;
  retryAfter?: boolean;
  /** The Allow header a 405 must carry. */
  allow?: string;
  /**
   * Sent in before(), while the stack starts, and only checked here: the Temporal client retries an unreachable
   * server for about 20 s before the API answers 503.
   */
  early?: boolean;
  /** Runs right before the request (e.g. spends the rate limit). */
  setup?: () => Promise<void>;
}

describe('bad requests against the real stack', () => {
  let temporal: TestTemporal;
  let config: Config;
  let worker: StartedWorker;
  let api: StartedServer;
  let rateLimited: StartedServer;
  let noTemporal: StartedServer;
  let noTemporalConfig: Config;
  let client: Client;
  let ended: string;
  let before_: { workflows: number; store: StoreCounts };

  const servers = () => ({ main: api, rateLimited, noTemporal });
  const early = new Map<string, Promise<Sent>>();

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    config = testConfig(temporal.address, LIMITS);
    const bundle = await workflowBundle();
    [worker, api, rateLimited, noTemporal] = await Promise.all([
      startWorker(config, testLog, { workflowBundle: bundle }),
      startServer(config, testLog),
      startServer(
        testConfig(temporal.address, { ...LIMITS, TASK_QUEUE: config.TASK_QUEUE, RATE_LIMIT_PER_MINUTE: '2' }),
        testLog,
      ),
      freePort().then((port) => {
        noTemporalConfig = testConfig(`127.0.0.1:${port}`, LIMITS); // nothing listens there
        return startServer(noTemporalConfig, testLog);
      }),
    ]);
    for (const c of CASES.filter((x) => x.early)) {
      const sent = send(servers()[c.server ?? 'main'], c);
      sent.catch(() => undefined); // its case reports a failure
      early.set(c.name, sent);
    }
    client = new Client({ connection: await connectTemporal(temporal.address) });

    // acme's batch that has ended: the target of the 409, tenancy and query cases, and of the reused key.
    const res = await send(api, {
      method: 'POST',
      path: '/v1/batches',
      json: batch(),
      headers: { 'idempotency-key': REUSED_KEY },
    });
    assert.equal(res.status, 202, res.text);
    ended = res.body.id;
    await waitFor(
      'the first batch to complete',
      async () => (await send(api, { path: `/v1/batches/${ended}` })).body.status === 'completed',
    );
    before_ = {
      workflows: await waitFor('the batch in visibility', async () => {
        const n = await countWorkflows(client);
        return n >= 1 ? n : undefined;
      }),
      store: storeCounts(config),
    };
  });

  after(async () => {
    await Promise.all([api?.close(), rateLimited?.close(), noTemporal?.close()]);
    await worker?.shutdown();
    await client?.connection.close();
    await temporal?.stop();
  });

  // One line per case, so the table reads as a table.
  // prettier-ignore
  const CASES: BadRequest[] = [
    // --- bodies and media types ---------------------------------------------------------------------------------
    { name: 'malformed JSON', path: '/v1/batches', raw: '{"model": "digits", "items": [', headers: asJson, status: 400, code: 'invalid_request' },
    { name: 'a JSON body that is a bare string (strict JSON)', path: '/v1/batches', raw: '"digits"', headers: asJson, status: 400, code: 'invalid_request' },
    { name: 'a JSON array instead of an object', path: '/v1/batches', json: [batch()], status: 400, code: 'invalid_request', at: [] },
    { name: 'text/plain body', path: '/v1/batches', raw: JSON.stringify(batch()), headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
    { name: 'no Content-Type', path: '/v1/batches', raw: new TextEncoder().encode(JSON.stringify(batch())), status: 415, code: 'unsupported_media_type' },
    { name: 'form-encoded body', path: '/v1/batches', raw: 'model=digits', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
    { name: 'JSON in an unsupported charset', path: '/v1/batches', raw: JSON.stringify(batch()), headers: { 'content-type': 'application/json; charset=latin1' }, status: 415, code: 'unsupported_media_type' },
    // --- missing, unknown and mistyped fields -------------------------------------------------------------------
    { name: 'missing model', path: '/v1/batches', json: { items: [item()] }, status: 400, code: 'invalid_request', at: ['model'] },
    { name: 'missing items', path: '/v1/batches', json: { model: 'digits' }, status: 400, code: 'invalid_request', at: ['items'] },
    { name: 'empty items', path: '/v1/batches', json: batch({ items: [] }), status: 400, code: 'invalid_request', at: ['items'] },
    { name: 'unknown top-level field', path: '/v1/batches', json: batch({ priority: 'high' }), status: 400, code: 'invalid_request', at: [], message: /priority/ },
    { name: 'a JSON batch with an NDJSON-only query parameter', path: '/v1/batches?concurrency=4', json: batch(), status: 400, code: 'invalid_request', at: ['concurrency'], message: /for NDJSON bodies only/ },
    { name: 'a JSON batch with an NDJSON-only header', path: '/v1/batches', json: batch(), headers: { ...asJson, 'Batchline-Model': 'digits' }, status: 400, code: 'invalid_request', message: /for NDJSON bodies only/ },
    { name: 'unknown item field', path: '/v1/batches', json: batch({ items: [{ ...item(), weight: 2 }] }), status: 400, code: 'invalid_request', at: ['items', 0], message: /weight/ },
    { name: 'model of the wrong type', path: '/v1/batches', json: batch({ model: 42 }), status: 400, code: 'invalid_request', at: ['model'] },
    { name: 'version as a string', path: '/v1/batches', json: batch({ version: '1' }), status: 400, code: 'invalid_request', at: ['version'] },
    { name: 'items as an object', path: '/v1/batches', json: batch({ items: { a: item() } }), status: 400, code: 'invalid_request', at: ['items'] },
    { name: 'inputs as an array', path: '/v1/batches', json: batch({ items: [{ inputs: [row] }] }), status: 400, code: 'invalid_request', at: ['items', 0, 'inputs'] },
    { name: 'metadata value not a string', path: '/v1/batches', json: batch({ metadata: { team: 7 } }), status: 400, code: 'invalid_request', at: ['metadata', 'team'] },
    // --- non-finite numbers, nesting, sizes ---------------------------------------------------------------------
    {
      name: 'non-finite number in an input (1e999)',
      path: '/v1/batches',
      raw: withInfinity(JSON.stringify(batch({ items: [item('a', ['INF', ...row.slice(1)])] }))),
      headers: asJson,
      status: 400,
      code: 'invalid_request',
      at: ['items', 0, 'inputs', 'input'],
      message: /finite/,
    },
    { name: 'non-finite option (backoffCoefficient 1e999)', path: '/v1/batches', raw: withInfinity(JSON.stringify(batch({ options: { backoffCoefficient: 'INF' } }))), headers: asJson, status: 400, code: 'invalid_request', at: ['options', 'backoffCoefficient'] },
    { name: 'nesting deeper than 32 levels', path: '/v1/batches', raw: `{"model":"digits","items":[{"inputs":{"input":${nested(40)}}}]}`, headers: asJson, status: 400, code: 'invalid_request', message: /nested deeper than 32/ },
    { name: 'an input with too many elements (5000 for 64)', path: '/v1/batches', json: batch({ items: [item('a', new Array(5000).fill(0))] }), status: 400, code: 'invalid_request', at: ['items', 0, 'inputs', 'input'], message: /expected 64/ },
    { name: 'more items than MAX_BATCH_ITEMS (51 > 50)', path: '/v1/batches', json: batch({ items: items(51) }), status: 413, code: 'payload_too_large' },
    { name: 'a body over MAX_BODY_BYTES', path: '/v1/batches', raw: `{"model":"digits","items":[${JSON.stringify(item())}]${' '.repeat(70_000)}}`, headers: asJson, status: 413, code: 'payload_too_large' },
    // --- NDJSON ---------------------------------------------------------------------------------------------------
    { name: 'NDJSON line that is not JSON', path: '/v1/batches?model=digits', ndjson: ndjson(item('a'), '{"inputs": ', item('c')), status: 400, code: 'invalid_request', at: ['line', 2] },
    { name: 'NDJSON line with the wrong input shape', path: '/v1/batches?model=digits', ndjson: ndjson(item('a'), item('b'), item('c', [1, 2, 3])), status: 400, code: 'invalid_request', at: ['line', 3, 'inputs', 'input'] },
    { name: 'NDJSON line with an unknown field', path: '/v1/batches?model=digits', ndjson: ndjson({ ...item(), extra: 1 }), status: 400, code: 'invalid_request', at: ['line', 1] },
    { name: 'NDJSON line nested too deeply', path: '/v1/batches?model=digits', ndjson: ndjson(`{"inputs":{"input":${nested(40)}}}`), status: 400, code: 'invalid_request', at: ['line', 1] },
    { name: 'NDJSON duplicate item ids', path: '/v1/batches?model=digits', ndjson: ndjson(item('a'), item('a')), status: 400, code: 'invalid_request', at: ['line', 2, 'id'] },
    { name: 'NDJSON item id that is an earlier item’s default id (its index)', path: '/v1/batches?model=digits', ndjson: ndjson({ inputs: { input: row } }, item('0')), status: 400, code: 'invalid_request', at: ['line', 2, 'id'] },
    { name: 'NDJSON with more lines than MAX_BATCH_ITEMS', path: '/v1/batches?model=digits', ndjson: ndjson(...items(51)), status: 413, code: 'payload_too_large' },
    { name: 'NDJSON body over MAX_BODY_BYTES', path: '/v1/batches?model=digits', ndjson: `{"inputs":{"input":[${row.join(',')}]}${' '.repeat(70_000)}}\n`, status: 413, code: 'payload_too_large' },
    { name: 'empty NDJSON body', path: '/v1/batches?model=digits', ndjson: '\n', status: 400, code: 'invalid_request', at: ['line', 1] },
    { name: 'NDJSON without a model', path: '/v1/batches', ndjson: ndjson(item()), status: 400, code: 'invalid_request', at: ['model'] },
    { name: 'NDJSON with an unknown query parameter', path: '/v1/batches?model=digits&colour=red', ndjson: ndjson(item()), status: 400, code: 'invalid_request', at: [], message: /colour/ },
    { name: 'NDJSON with concurrency=0', path: '/v1/batches?model=digits&concurrency=0', ndjson: ndjson(item()), status: 400, code: 'invalid_request', at: ['concurrency'] },
    { name: 'NDJSON with an unknown itemActivities', path: '/v1/batches?model=digits&itemActivities=fast', ndjson: ndjson(item()), status: 400, code: 'invalid_request', at: ['itemActivities'] },
    { name: 'NDJSON with a Batchline-Options header that is not JSON', path: '/v1/batches?model=digits', ndjson: ndjson(item()), headers: { 'batchline-options': '{concurrency: 2' }, status: 400, code: 'invalid_request', at: ['Batchline-Options'] },
    // --- models and inputs ----------------------------------------------------------------------------------------
    { name: 'unknown model', path: '/v1/batches', json: batch({ model: 'no-such-model' }), status: 400, code: 'invalid_request', at: ['model'] },
    { name: 'unknown model version', path: '/v1/batches', json: batch({ version: 99 }), status: 400, code: 'invalid_request', at: ['version'] },
    { name: 'wrong input shape', path: '/v1/batches', json: batch({ items: [item('a', [1, 2, 3])] }), status: 400, code: 'invalid_request', at: ['items', 0, 'inputs', 'input'] },
    { name: 'wrong dtype (strings for float32)', path: '/v1/batches', json: batch({ items: [item('a', row.map(String))] }), status: 400, code: 'invalid_request', at: ['items', 0, 'inputs', 'input'], message: /not a number/ },
    { name: 'missing input', path: '/v1/batches', json: batch({ items: [{ inputs: {} }] }), status: 400, code: 'invalid_request', at: ['items', 0, 'inputs', 'input'] },
    { name: 'unknown input name', path: '/v1/batches', json: batch({ items: [{ inputs: { input: row, pixels: row } }] }), status: 400, code: 'invalid_request', at: ['items', 0, 'inputs', 'pixels'] },
    { name: 'text model given a number', path: '/v1/batches', json: { model: 'all-minilm-l6-v2', items: [{ inputs: { text: 5 } }] }, status: 400, code: 'invalid_request', at: ['items', 0, 'inputs', 'text'] },
    { name: 'duplicate item ids', path: '/v1/batches', json: batch({ items: [item('a'), item('b'), item('a')] }), status: 400, code: 'invalid_request', at: ['items', 2, 'id'] },
    { name: 'item without an id whose index is an earlier item’s id', path: '/v1/batches', json: batch({ items: [item('1'), { inputs: { input: row } }] }), status: 400, code: 'invalid_request', at: ['items', 1, 'id'] },
    // --- options and webhooks ---------------------------------------------------------------------------------------
    { name: 'initialIntervalMs 500 (Temporal retries in whole seconds)', path: '/v1/batches', json: batch({ options: { initialIntervalMs: 500 } }), status: 400, code: 'invalid_request', at: ['options', 'initialIntervalMs'] },
    { name: 'concurrency 0', path: '/v1/batches', json: batch({ options: { concurrency: 0 } }), status: 400, code: 'invalid_request', at: ['options', 'concurrency'] },
    { name: 'itemsPerActivity 5001 (a chunk holds at most 5000 items)', path: '/v1/batches', json: batch({ options: { itemsPerActivity: 5001 } }), status: 400, code: 'invalid_request', at: ['options', 'itemsPerActivity'] },
    { name: 'fractional maxAttempts', path: '/v1/batches', json: batch({ options: { maxAttempts: 1.5 } }), status: 400, code: 'invalid_request', at: ['options', 'maxAttempts'] },
    { name: 'unknown option', path: '/v1/batches', json: batch({ options: { turbo: true } }), status: 400, code: 'invalid_request', at: ['options'], message: /turbo/ },
    { name: 'ftp:// webhook', path: '/v1/batches', json: batch({ webhook: { url: 'ftp://example.com/hook' } }), status: 400, code: 'invalid_request', at: ['webhook', 'url'] },
    { name: 'webhook URL with credentials', path: '/v1/batches', json: batch({ webhook: { url: 'https://user:pw@example.com/hook' } }), status: 400, code: 'invalid_request', at: ['webhook', 'url'] },
    { name: 'loopback webhook URL (refused by default)', path: '/v1/batches', json: batch({ webhook: { url: 'http://127.0.0.1:9/hook' } }), status: 400, code: 'invalid_request', at: ['webhook', 'url'] },
    { name: 'cloud metadata webhook URL', path: '/v1/batches', json: batch({ webhook: { url: 'http://169.254.169.254/latest/meta-data' } }), status: 400, code: 'invalid_request', at: ['webhook', 'url'] },
    { name: 'localhost webhook URL', path: '/v1/batches', json: batch({ webhook: { url: 'http://localhost:8080/hook' } }), status: 400, code: 'invalid_request', at: ['webhook', 'url'] },
    { name: 'NDJSON with a private webhook URL', path: '/v1/batches?model=digits&webhook=http%3A%2F%2F10.0.0.5%2Fhook', ndjson: ndjson(item('a')), status: 400, code: 'invalid_request', at: ['webhook', 'url'] },
    { name: 'empty webhook URL (documented as any string, refused)', path: '/v1/batches', json: batch({ webhook: { url: '' } }), status: 400, code: 'invalid_request', at: ['webhook', 'url'], message: /webhook URL is required/ },
    { name: 'relative webhook URL', path: '/v1/batches', json: batch({ webhook: { url: '/hook' } }), status: 400, code: 'invalid_request', at: ['webhook', 'url'] },
    { name: 'NDJSON with an empty webhook= parameter', path: '/v1/batches?model=digits&webhook=', ndjson: ndjson(item('a')), status: 400, code: 'invalid_request', at: ['webhook'] },
    { name: 'unknown webhook event', path: '/v1/batches', json: batch({ webhook: { url: 'https://example.com/hook', events: ['everything'] } }), status: 400, code: 'invalid_request', at: ['webhook', 'events', 0] },
    // --- idempotency keys ------------------------------------------------------------------------------------------
    { name: 'Idempotency-Key with a space', path: '/v1/batches', json: batch(), headers: { 'idempotency-key': 'two words' }, status: 400, code: 'invalid_request', at: ['Idempotency-Key'] },
    { name: 'Idempotency-Key of 256 characters', path: '/v1/batches', json: batch(), headers: { 'idempotency-key': 'k'.repeat(256) }, status: 400, code: 'invalid_request', at: ['Idempotency-Key'] },
    { name: 'Idempotency-Key reused with a different body', path: '/v1/batches', json: batch({ items: [item('other')] }), headers: { 'idempotency-key': REUSED_KEY }, status: 422, code: 'unprocessable' },
    // --- query parameters -------------------------------------------------------------------------------------------
    { name: 'list with limit=0', method: 'GET', path: '/v1/batches?limit=0', status: 400, code: 'invalid_request', at: ['limit'] },
    { name: 'list with limit=abc', method: 'GET', path: '/v1/batches?limit=abc', status: 400, code: 'invalid_request', at: ['limit'] },
    { name: 'list with limit=+5 (a number the document does not write)', method: 'GET', path: '/v1/batches?limit=%2B5', status: 400, code: 'invalid_request', at: ['limit'] },
    { name: 'list with an empty limit=', method: 'GET', path: '/v1/batches?limit=', status: 400, code: 'invalid_request', at: ['limit'] },
    { name: 'items with cursor=0x10', method: 'GET', path: () => `/v1/batches/${ended}/items?cursor=0x10`, status: 400, code: 'invalid_request', at: ['cursor'] },
    { name: 'list with status=bogus', method: 'GET', path: '/v1/batches?status=bogus', status: 400, code: 'invalid_request', at: ['status'] },
    { name: 'list with cursor=KZ (matches the documented pattern; was 500)', method: 'GET', path: '/v1/batches?cursor=KZ', status: 400, code: 'invalid_request', at: ['cursor'] },
    { name: 'list with a well-formed cursor no listing gave out', method: 'GET', path: `/v1/batches?cursor=${Buffer.from('{"CloseTime":"zz"}').toString('base64url')}`, status: 400, code: 'invalid_request', at: ['cursor'], message: /not a cursor this API gave out/ },
    { name: 'list with model=%00 (was 503 with Retry-After while Temporal was up)', method: 'GET', path: '/v1/batches?model=%00', status: 400, code: 'invalid_request', at: ['model'] },
    { name: 'list with a model name holding a quote', method: 'GET', path: `/v1/batches?model=${encodeURIComponent("d' OR BatchTenant != '")}`, status: 400, code: 'invalid_request', at: ['model'] },
    { name: 'list with an unknown parameter', method: 'GET', path: '/v1/batches?colour=red', status: 400, code: 'invalid_request', at: [], message: /colour/ },
    { name: 'items with limit=5000', method: 'GET', path: () => `/v1/batches/${ended}/items?limit=5000`, status: 400, code: 'invalid_request', at: ['limit'] },
    { name: 'items with status=done', method: 'GET', path: () => `/v1/batches/${ended}/items?status=done`, status: 400, code: 'invalid_request', at: ['status'] },
    { name: 'results with follow=maybe', method: 'GET', path: () => `/v1/batches/${ended}/results?follow=maybe`, status: 400, code: 'invalid_request', at: ['follow'] },
    { name: 'bad Last-Event-ID', method: 'GET', path: () => `/v1/batches/${ended}/events`, headers: { 'last-event-id': 'abc' }, status: 400, code: 'invalid_request', at: ['Last-Event-ID'] },
    // --- ids and tenants --------------------------------------------------------------------------------------------
    { name: 'malformed batch id', method: 'GET', path: '/v1/batches/not-a-batch-id', status: 404, code: 'not_found' },
    { name: 'unknown batch', method: 'GET', path: '/v1/batches/0123456789abcdef0123', status: 404, code: 'not_found' },
    { name: "another tenant's batch", method: 'GET', path: () => `/v1/batches/${ended}`, key: GLOBEX, status: 404, code: 'not_found', message: /^batch '/ },
    { name: "another tenant's items", method: 'GET', path: () => `/v1/batches/${ended}/items`, key: GLOBEX, status: 404, code: 'not_found', message: /^batch '/ },
    { name: "cancelling another tenant's batch", method: 'POST', path: () => `/v1/batches/${ended}/cancel`, key: GLOBEX, status: 404, code: 'not_found', message: /^batch '/ },
    { name: 'unknown item id', method: 'GET', path: () => `/v1/batches/${ended}/items/nope`, status: 404, code: 'not_found', message: /^item 'nope'/ },
    { name: 'unknown route', method: 'GET', path: '/v1/batchez', status: 404, code: 'not_found' },
    // --- methods a declared path does not serve: 405 with Allow, before authentication ------------------------------
    { name: 'TRACE on /v1/batches (was 404)', method: 'TRACE', path: '/v1/batches', status: 405, code: 'method_not_allowed', allow: 'GET, HEAD, POST, OPTIONS' },
    { name: 'PUT on a batch', method: 'PUT', path: () => `/v1/batches/${ended}`, json: batch(), status: 405, code: 'method_not_allowed', allow: 'GET, HEAD, OPTIONS' },
    { name: 'DELETE on a batch', method: 'DELETE', path: () => `/v1/batches/${ended}`, status: 405, code: 'method_not_allowed', allow: 'GET, HEAD, OPTIONS' },
    { name: 'GET on a batch’s cancel', method: 'GET', path: () => `/v1/batches/${ended}/cancel`, status: 405, code: 'method_not_allowed', allow: 'POST, OPTIONS' },
    { name: 'PATCH on /v1/predict', method: 'PATCH', path: '/v1/predict', json: {}, status: 405, code: 'method_not_allowed', allow: 'POST, OPTIONS' },
    { name: 'TRACE without an API key (which methods a path takes is public)', method: 'TRACE', path: '/v1/batches', key: null, status: 405, code: 'method_not_allowed', allow: 'GET, HEAD, POST, OPTIONS' },
    { name: 'KServe: GET on infer', method: 'GET', path: '/v2/models/digits/infer', status: 405, code: 'v2', allow: 'POST, OPTIONS' },
    { name: 'KServe: TRACE on model metadata', method: 'TRACE', path: '/v2/models/digits', status: 405, code: 'v2', allow: 'GET, HEAD, OPTIONS' },
    // --- authentication ---------------------------------------------------------------------------------------------
    { name: 'no API key', method: 'GET', path: '/v1/batches', key: null, status: 401, code: 'unauthorized' },
    { name: 'unknown API key', method: 'GET', path: '/v1/batches', key: 'key-zzzzzzzzzzzzzzzz', status: 401, code: 'unauthorized' },
    { name: 'Basic instead of Bearer', method: 'GET', path: '/v1/batches', key: null, headers: { authorization: `Basic ${btoa(`acme:${ACME}`)}` }, status: 401, code: 'unauthorized' },
    { name: 'Bearer without a key', path: '/v1/batches', json: batch(), key: null, headers: { authorization: 'Bearer' }, status: 401, code: 'unauthorized' },
    // --- state --------------------------------------------------------------------------------------------------------
    { name: 'pause an ended batch', method: 'POST', path: () => `/v1/batches/${ended}/pause`, status: 409, code: 'conflict' },
    { name: 'resume an ended batch', method: 'POST', path: () => `/v1/batches/${ended}/resume`, status: 409, code: 'conflict' },
    { name: 'cancel an ended batch', method: 'POST', path: () => `/v1/batches/${ended}/cancel`, status: 409, code: 'conflict' },
    { name: 'retry-failed on an ended batch', method: 'POST', path: () => `/v1/batches/${ended}/retry-failed`, status: 409, code: 'conflict' },
    // --- rate limit and an unreachable Temporal -----------------------------------------------------------------------
    {
      name: 'over RATE_LIMIT_PER_MINUTE (2)',
      server: 'rateLimited',
      path: '/v1/batches',
      json: batch({ model: 'no-such-model' }),
      setup: async () => {
        for (let i = 0; i < 2; i++) {
          const res = await send(rateLimited, { method: 'POST', path: '/v1/batches', json: batch({ model: 'no-such-model' }) });
          assert.equal(res.status, 400, `request ${i + 1} of 2 is within the limit: ${res.text}`);
        }
      },
      status: 429,
      code: 'rate_limited',
      retryAfter: true,
    },
    { name: 'submit while Temporal is unreachable', server: 'noTemporal', early: true, path: '/v1/batches', json: batch(), status: 503, code: 'unavailable', retryAfter: true },
    { name: 'list while Temporal is unreachable', server: 'noTemporal', early: true, method: 'GET', path: '/v1/batches', status: 503, code: 'unavailable', retryAfter: true },
    // --- online predictions ---------------------------------------------------------------------------------------------
    { name: 'predict with timeoutMs above PREDICT_MAX_TIMEOUT_MS', path: '/v1/predict', json: { model: 'digits', inputs: { input: row }, timeoutMs: 10_000_000 }, status: 400, code: 'invalid_request', at: ['timeoutMs'] },
    { name: 'predict without inputs', path: '/v1/predict', json: { model: 'digits' }, status: 400, code: 'invalid_request', at: ['inputs'] },
    { name: 'predict with an unknown model', path: '/v1/predict', json: { model: 'no-such-model', inputs: { input: row } }, status: 400, code: 'invalid_request', at: ['model'] },
    { name: 'predict with the wrong input shape', path: '/v1/predict', json: { model: 'digits', inputs: { input: [1, 2] } }, status: 400, code: 'invalid_request', at: ['inputs', 'input'] },
    { name: 'async predict with a non-finite input', path: '/v1/predict/async', raw: withInfinity(JSON.stringify({ model: 'digits', inputs: { input: ['INF', ...row.slice(1)] } })), headers: asJson, status: 400, code: 'invalid_request', at: ['inputs', 'input'] },
    { name: 'async predict as text/plain', path: '/v1/predict/async', raw: JSON.stringify({ model: 'digits', inputs: { input: row } }), headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
    { name: 'unknown task', method: 'GET', path: '/v1/tasks/0123456789abcdef0123', status: 404, code: 'not_found' },
    { name: 'malformed task id', method: 'GET', path: '/v1/tasks/not-a-task', status: 404, code: 'not_found' },
    { name: 'unknown model (GET /v1/models/{name})', method: 'GET', path: '/v1/models/no-such-model', status: 404, code: 'not_found' },
    // --- Open Inference Protocol: errors are { "error": "<message>" } ------------------------------------------------------
    { name: 'KServe infer with the wrong shape', path: '/v2/models/digits/infer', json: { inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }, status: 400, code: 'v2', message: /input/ },
    { name: 'KServe infer with data not matching its shape', path: '/v2/models/digits/infer', json: { inputs: [{ name: 'input', shape: [2, 64], datatype: 'FP32', data: row }] }, status: 400, code: 'v2', message: /holds 128 values/ },
    { name: 'KServe infer with the wrong datatype', path: '/v2/models/digits/infer', json: { inputs: [{ name: 'input', shape: [1, 64], datatype: 'INT64', data: row.map(Math.round) }] }, status: 400, code: 'v2', message: /datatype/ },
    { name: 'KServe infer without inputs', path: '/v2/models/digits/infer', json: { inputs: [] }, status: 400, code: 'v2' },
    { name: 'KServe infer with malformed JSON', path: '/v2/models/digits/infer', raw: '{"inputs": [', headers: asJson, status: 400, code: 'v2' },
    { name: 'KServe infer without an API key', path: '/v2/models/digits/infer', json: { inputs: [{ name: 'input', shape: [1, 64], datatype: 'FP32', data: row }] }, key: null, status: 401, code: 'v2' },
    { name: 'KServe infer on an unknown model', path: '/v2/models/no-such-model/infer', json: { inputs: [{ name: 'input', shape: [1, 64], datatype: 'FP32', data: row }] }, status: 404, code: 'v2' },
    { name: 'KServe metadata of a malformed version', method: 'GET', path: '/v2/models/digits/versions/one', status: 400, code: 'v2' },
  ];

  for (const c of CASES) {
    test(`${c.status} ${c.code === 'v2' ? '(protocol shape)' : c.code}: ${c.name}`, async () => {
      await c.setup?.();
      const res = await (early.get(c.name) ?? send(servers()[c.server ?? 'main'], c));
      assert.equal(res.status, c.status, `${c.name}: ${res.text}`);
      assert.doesNotMatch(res.text, /(^|\\n|\n)\s*at .+:\d+:\d+/, 'no stack trace');
      if (c.code === 'v2') {
        assert.ok(KServeError.safeParse(res.body).success, `the protocol's error shape: ${res.text}`);
        if (c.message) assert.match(res.body.error, c.message);
      } else {
        const parsed = ErrorBody.safeParse(res.body);
        assert.ok(parsed.success, `the one error shape: ${res.text}`);
        assert.equal(res.body.error.code, c.code);
        if (c.message) assert.match(res.body.error.message, c.message);
        if (c.at) {
          const paths = (res.body.error.details ?? []).map((d: { path: unknown[] }) => d.path);
          assert.ok(
            paths.some((p: unknown) => JSON.stringify(p) === JSON.stringify(c.at)),
            `a detail at ${JSON.stringify(c.at)}: ${res.text}`,
          );
        }
      }
      if (c.retryAfter) assert.match(res.headers.get('retry-after') ?? '', /^\d+$/, 'Retry-After');
      // A client that obeys Retry-After would send a request refused for its own fault again and again.
      else assert.equal(res.headers.get('retry-after'), null, 'no Retry-After on a request refused for itself');
      if (c.allow) assert.equal(res.headers.get('allow'), c.allow, 'Allow');
      if (c.status === 401) assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    });
  }

  test('afterwards the API is healthy, a valid batch completes, and none of the bad requests queued or stored anything', async () => {
    assert.ok(CASES.length >= 40, `${CASES.length} cases`);
    assert.equal((await send(api, { path: '/healthz', key: null })).status, 200);
    assert.deepEqual(storeCounts(config), before_.store, 'no batch or item was stored by a bad request');
    assert.deepEqual(storeCounts(noTemporalConfig), { batches: 0, items: 0 }, 'the 503 left nothing behind');

    const res = await send(api, { method: 'POST', path: '/v1/batches', json: batch({ items: items(3) }) });
    assert.equal(res.status, 202, res.text);
    const done = await waitFor('the valid batch to complete', async () => {
      const r = await send(api, { path: `/v1/batches/${res.body.id}` });
      return r.body.status === 'completed' ? r.body : undefined;
    });
    assert.equal(done.counts.succeeded, 3);
    // Visibility lags a little: wait until the valid batch is listed, then nothing else may be.
    const after = await waitFor('the valid batch in visibility', async () => {
      const n = await countWorkflows(client);
      return n > before_.workflows ? n : undefined;
    });
    assert.equal(after, before_.workflows + 1, 'only the valid batch started a workflow');
  });
});

interface Sent {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function send(
  server: StartedServer,
  c: Pick<BadRequest, 'method' | 'path' | 'json' | 'raw' | 'ndjson' | 'key' | 'headers'>,
): Promise<Sent> {
  const key = c.key === undefined ? ACME : c.key;
  const headers: Record<string, string> = {
    ...(key ? { authorization: `Bearer ${key}` } : {}),
    ...(c.json !== undefined ? asJson : {}),
    ...(c.ndjson !== undefined ? { 'content-type': 'application/x-ndjson' } : {}),
    ...c.headers,
  };
  const body = c.json !== undefined ? JSON.stringify(c.json) : (c.ndjson ?? c.raw);
  const path = typeof c.path === 'function' ? c.path() : c.path;
  const method = c.method ?? (body === undefined ? 'GET' : 'POST');
  const res =
    method === 'TRACE'
      ? await traceRequest(`${server.url}${path}`, headers)
      : await fetch(`${server.url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** A TRACE request (fetch refuses the method), answered as fetch answers. */
function traceRequest(url: string, headers: Record<string, string>): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'TRACE', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const answer = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') answer.set(name, value);
        resolve(new Response(Buffer.concat(chunks), { status: res.statusCode, headers: answer }));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every workflow execution the dev server's visibility lists (batches, webhooks, predictions). */
async function countWorkflows(client: Client): Promise<number> {
  let n = 0;
  for await (const _ of client.workflow.list()) n++;
  return n;
}

interface StoreCounts {
  batches: number;
  items: number;
}

/** Batches and items in a server's item store (a staged NDJSON upload shows in `items` before it commits). */
function storeCounts(config: Config): StoreCounts {
  const db = new Database(itemStoreFile(config), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(
        'SELECT (SELECT count(*) FROM batches) AS batches, (SELECT COALESCE(SUM(n), 0) FROM item_blocks) AS items',
      )
      .get() as StoreCounts;
  } finally {
    db.close();
  }
}
