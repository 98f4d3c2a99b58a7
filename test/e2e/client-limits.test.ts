// The limits on what a client controls, against the real stack (dev server, worker, API with an API key): every
// over-limit value (metadata, model names, item ids, list cursors, NDJSON headers, the API key) is answered with a
// 4xx naming its field, where some used to reach Temporal and come back as a 500 or 503; the largest valid values
// still work end to end, a real list cursor included, and nothing the refused requests sent was queued.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ErrorBody } from '../../src/api/openapi.js';
import type { Config } from '../../src/config.js';
import {
  MAX_API_KEY_LENGTH,
  MAX_ITEM_ID_LENGTH,
  MAX_LIST_CURSOR_LENGTH,
  MAX_OPTIONS_HEADER_LENGTH,
  MAX_WEBHOOK_URL_LENGTH,
  METADATA_MAX_KEY_LENGTH,
  METADATA_MAX_KEYS,
  METADATA_MAX_VALUE_LENGTH,
} from '../../src/contracts/limits.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { startWorker, type StartedWorker } from '../../src/worker.js';
import { heldout, http } from '../helpers/data.js';
import {
  quietTemporalLogs,
  startTestTemporal,
  testConfig,
  testLog,
  waitFor,
  workflowBundle,
  type TestTemporal,
} from '../helpers/temporal.js';

const KEY = 'key-limits-aaaaaaaaaaaa';
const asClient = { authorization: `Bearer ${KEY}` };
const row = heldout('digits')[0]!.inputs.input;
const item = (id?: string) => ({ ...(id === undefined ? {} : { id }), inputs: { input: row } });
const batch = (over: Record<string, unknown> = {}) => ({ model: 'digits', items: [item('a')], ...over });
const ndjson = (...ids: string[]) => ids.map((id) => JSON.stringify(item(id))).join('\n') + '\n';

/** `n` metadata keys padded to `keyLength`, each with `value`. */
const metadata = (n: number, value: string, keyLength = 2): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`.padEnd(keyLength, '_'), value]));

interface Case {
  name: string;
  method?: 'GET' | 'POST';
  path: string;
  json?: unknown;
  ndjson?: string;
  headers?: Record<string, string>;
  status: number;
  code: string;
  /** The field path some detail must name. */
  at?: (string | number)[];
  message?: RegExp;
}

// One line per case, so the table reads as a table.
// prettier-ignore
const CASES: Case[] = [
  // --- metadata -----------------------------------------------------------------------------------------------------
  // 5000 keys of 500 characters passed the old schema and overflowed the workflow memo: Temporal refused it, a 500.
  { name: 'metadata larger than the workflow memo takes (was 500)', path: '/v1/batches', json: batch({ metadata: metadata(5000, 'v'.repeat(500)) }), status: 400, code: 'invalid_request', at: ['metadata'] },
  { name: `metadata with ${METADATA_MAX_KEYS + 1} keys`, path: '/v1/batches', json: batch({ metadata: metadata(METADATA_MAX_KEYS + 1, 'v') }), status: 400, code: 'invalid_request', at: ['metadata'] },
  { name: `a metadata key of ${METADATA_MAX_KEY_LENGTH + 1} characters`, path: '/v1/batches', json: batch({ metadata: { ['k'.repeat(METADATA_MAX_KEY_LENGTH + 1)]: 'v' } }), status: 400, code: 'invalid_request', at: ['metadata', 'k'.repeat(METADATA_MAX_KEY_LENGTH + 1)] },
  { name: `a metadata value of ${METADATA_MAX_VALUE_LENGTH + 1} characters`, path: '/v1/batches', json: batch({ metadata: { team: 'v'.repeat(METADATA_MAX_VALUE_LENGTH + 1) } }), status: 400, code: 'invalid_request', at: ['metadata', 'team'] },
  { name: 'metadata within the key limits but over the byte limit as JSON', path: '/v1/batches', json: batch({ metadata: metadata(METADATA_MAX_KEYS, '\u0000'.repeat(METADATA_MAX_VALUE_LENGTH)) }), status: 400, code: 'invalid_request', at: ['metadata'] },
  // --- model names (they reach Temporal visibility queries) ---------------------------------------------------------
  { name: 'list with model=%00 (was 503)', method: 'GET', path: '/v1/batches?model=%00', status: 400, code: 'invalid_request', at: ['model'] },
  { name: 'list with a model name holding a quote', method: 'GET', path: `/v1/batches?model=${encodeURIComponent("x' OR BatchTenant != '")}`, status: 400, code: 'invalid_request', at: ['model'] },
  { name: 'list with a model name of 129 characters', method: 'GET', path: `/v1/batches?model=${'m'.repeat(129)}`, status: 400, code: 'invalid_request', at: ['model'] },
  { name: 'a JSON batch whose model holds NUL', path: '/v1/batches', json: batch({ model: 'digits\u0000' }), status: 400, code: 'invalid_request', at: ['model'] },
  { name: 'an NDJSON batch with model=%00', path: '/v1/batches?model=%00', ndjson: ndjson('a'), status: 400, code: 'invalid_request', at: ['model'] },
  { name: 'an NDJSON batch with a Batchline-Model that is not a name', path: '/v1/batches', ndjson: ndjson('a'), headers: { 'batchline-model': 'two words' }, status: 400, code: 'invalid_request', at: ['Batchline-Model'] },
  // --- list cursors (Temporal's page tokens) --------------------------------------------------------------------------
  { name: 'list with cursor=KZ (was 500)', method: 'GET', path: '/v1/batches?cursor=KZ', status: 400, code: 'invalid_request', at: ['cursor'] },
  { name: 'list with a cursor that is base64url of a JSON array', method: 'GET', path: `/v1/batches?cursor=${Buffer.from('[]').toString('base64url')}`, status: 400, code: 'invalid_request', at: ['cursor'] },
  { name: 'list with a well-formed cursor no listing gave out (was 500)', method: 'GET', path: `/v1/batches?cursor=${Buffer.from('{"CloseTime":"zz"}').toString('base64url')}`, status: 400, code: 'invalid_request', at: ['cursor'] },
  { name: `list with a cursor of ${MAX_LIST_CURSOR_LENGTH + 1} characters`, method: 'GET', path: `/v1/batches?cursor=${'e'.repeat(MAX_LIST_CURSOR_LENGTH + 1)}`, status: 400, code: 'invalid_request', at: ['cursor'] },
  // --- item ids ---------------------------------------------------------------------------------------------------------
  { name: 'a JSON item id holding NUL', path: '/v1/batches', json: batch({ items: [item('a\u0000b')] }), status: 400, code: 'invalid_request', at: ['items', 0, 'id'] },
  { name: `a JSON item id of ${MAX_ITEM_ID_LENGTH + 1} characters`, path: '/v1/batches', json: batch({ items: [item('i'.repeat(MAX_ITEM_ID_LENGTH + 1))] }), status: 400, code: 'invalid_request', at: ['items', 0, 'id'] },
  { name: 'an NDJSON item id holding a line break', path: '/v1/batches?model=digits', ndjson: ndjson('ok', 'line\nbreak'), status: 400, code: 'invalid_request', at: ['line', 2, 'id'] },
  // --- other fields and headers -------------------------------------------------------------------------------------------
  { name: `a webhook URL of ${MAX_WEBHOOK_URL_LENGTH + 1} characters`, path: '/v1/batches', json: batch({ webhook: { url: `https://example.com/${'p'.repeat(MAX_WEBHOOK_URL_LENGTH)}` } }), status: 400, code: 'invalid_request', at: ['webhook', 'url'] },
  { name: 'a Batchline-Version that is not a version', path: '/v1/batches', ndjson: ndjson('a'), headers: { 'batchline-model': 'digits', 'batchline-version': '1e3' }, status: 400, code: 'invalid_request', at: ['Batchline-Version'] },
  { name: `a Batchline-Options header of ${MAX_OPTIONS_HEADER_LENGTH + 1} characters`, path: '/v1/batches', ndjson: ndjson('a'), headers: { 'batchline-model': 'digits', 'batchline-options': `{"x":"${'o'.repeat(MAX_OPTIONS_HEADER_LENGTH)}"}` }, status: 400, code: 'invalid_request', at: ['Batchline-Options'] },
  { name: 'a Last-Event-ID of 16 digits', method: 'GET', path: '/v1/batches/0123456789abcdef0123/events', headers: { 'last-event-id': '1'.repeat(16) }, status: 400, code: 'invalid_request', at: ['Last-Event-ID'] },
  { name: `an API key of ${MAX_API_KEY_LENGTH + 1} characters`, method: 'GET', path: '/v1/batches', headers: { authorization: `Bearer ${'k'.repeat(MAX_API_KEY_LENGTH + 1)}` }, status: 401, code: 'unauthorized', message: new RegExp(`at most ${MAX_API_KEY_LENGTH} characters`) },
];

describe('limits on what a client controls, against the real stack', () => {
  let temporal: TestTemporal;
  let config: Config;
  let worker: StartedWorker;
  let api: StartedServer;

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    config = testConfig(temporal.address, { API_KEYS: `${KEY}=limits` });
    [worker, api] = await Promise.all([
      workflowBundle().then((bundle) => startWorker(config, testLog, { workflowBundle: bundle })),
      startServer(config, testLog),
    ]);
  });

  after(async () => {
    await api?.close();
    await worker?.shutdown();
    await temporal?.stop();
  });

  const send = async (c: Pick<Case, 'method' | 'path' | 'json' | 'ndjson' | 'headers'>) => {
    const headers = {
      ...asClient,
      ...(c.ndjson !== undefined ? { 'content-type': 'application/x-ndjson' } : {}),
      ...c.headers,
    };
    return http(api.url, c.method ?? 'POST', c.path, c.json ?? c.ndjson, headers);
  };

  for (const c of CASES) {
    test(`${c.status} ${c.code}: ${c.name}`, async () => {
      const res = await send(c);
      assert.equal(res.status, c.status, `${c.name}: ${JSON.stringify(res.body).slice(0, 500)}`);
      assert.ok(ErrorBody.safeParse(res.body).success, `the one error shape: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, c.code);
      if (c.message) assert.match(res.body.error.message, c.message);
      if (c.at) {
        const paths = (res.body.error.details ?? []).map((d: { path: unknown[] }) => JSON.stringify(d.path));
        assert.ok(paths.includes(JSON.stringify(c.at)), `a detail at ${JSON.stringify(c.at)}: ${paths}`);
      }
    });
  }

  test('the largest valid values still work: metadata at every limit, a long item id, a real list cursor', async () => {
    const largest = metadata(METADATA_MAX_KEYS, 'v'.repeat(METADATA_MAX_VALUE_LENGTH), METADATA_MAX_KEY_LENGTH);
    const longId = 'é'.repeat(MAX_ITEM_ID_LENGTH);
    const first = await send({ path: '/v1/batches', json: batch({ metadata: largest, items: [item(longId)] }) });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const second = await send({
      path: '/v1/batches',
      ndjson: ndjson('a'),
      headers: { 'batchline-model': 'digits', 'batchline-version': '1', 'batchline-options': '{"concurrency":2}' },
    });
    assert.equal(second.status, 202, JSON.stringify(second.body));

    for (const id of [first.body.id, second.body.id]) {
      await waitFor(`batch ${id} to complete`, async () => {
        const res = await send({ method: 'GET', path: `/v1/batches/${id}` });
        return res.body.status === 'completed' ? res.body : undefined;
      });
    }
    const stored = await send({ method: 'GET', path: `/v1/batches/${first.body.id}` });
    assert.deepEqual(stored.body.metadata, largest);
    const byId = await send({
      method: 'GET',
      path: `/v1/batches/${first.body.id}/items/${encodeURIComponent(longId)}`,
    });
    assert.equal(byId.status, 200, JSON.stringify(byId.body));

    // Both batches listed (visibility lags a little), then page by page with Temporal's own cursor: the cursor
    // check lets real page tokens through. Only the two valid batches exist: no refused request started one.
    await waitFor('both batches in the list', async () => {
      const res = await send({ method: 'GET', path: '/v1/batches?model=digits' });
      return res.body.batches?.length === 2 ? true : undefined;
    });
    const page1 = await send({ method: 'GET', path: '/v1/batches?model=digits&limit=1' });
    assert.equal(page1.status, 200, JSON.stringify(page1.body));
    assert.ok(page1.body.nextCursor, 'a first page of one has a cursor');
    const page2 = await send({
      method: 'GET',
      path: `/v1/batches?model=digits&limit=1&cursor=${page1.body.nextCursor}`,
    });
    assert.equal(page2.status, 200, JSON.stringify(page2.body));
    const listed = [...page1.body.batches, ...page2.body.batches].map((b: { id: string }) => b.id).sort();
    assert.deepEqual(listed, [first.body.id, second.body.id].sort());
    const all = await send({ method: 'GET', path: '/v1/batches?limit=100' });
    assert.equal(all.body.batches.length, 2, 'no refused request left a batch behind');
  });
});
