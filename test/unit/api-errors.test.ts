// Bad requests get the one error shape with the right status, never reach Temporal, and leave the API healthy.
// The Temporal client is replaced by a stub that records calls: every request here must be refused before it.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp } from '../../src/api/app.js';
import { UnavailableError } from '../../src/errors.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import { heldout, http } from '../helpers/data.js';
import { ROOT, testLog } from '../helpers/temporal.js';

const good = heldout('digits')[0]!.inputs;
const calls: string[] = [];
let temporalDown = false;

const stubClient = {
  async submit(): Promise<string> {
    calls.push('submit');
    if (temporalDown) throw new UnavailableError('the Temporal service is unreachable; try again shortly');
    return '0123456789abcdef0123';
  },
  async get(): Promise<never> {
    calls.push('get');
    throw new UnavailableError('the Temporal service is unreachable; try again shortly');
  },
};

let server: Server;
let base: string;

before(async () => {
  const app = createApp({
    client: stubClient,
    models: new ModelRepository(path.join(ROOT, 'models')),
    maxBatchItems: 5,
    maxBodyBytes: 64 * 1024,
    log: testLog,
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const addr = server.address() as { port: number };
  base = `http://127.0.0.1:${addr.port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

type Case = { name: string; body: unknown; status: number; code: string; path?: (string | number)[]; headers?: Record<string, string> };

const cases: Case[] = [
  { name: 'body is not JSON', body: '{"model": ', status: 400, code: 'invalid_request' },
  { name: 'body is a JSON array', body: [], status: 400, code: 'invalid_request' },
  { name: 'model missing', body: { items: [{ inputs: good }] }, status: 400, code: 'invalid_request', path: ['model'] },
  { name: 'model not a string', body: { model: 7, items: [{ inputs: good }] }, status: 400, code: 'invalid_request', path: ['model'] },
  { name: 'unknown model', body: { model: 'nope', items: [{ inputs: good }] }, status: 400, code: 'invalid_request', path: ['model'] },
  { name: 'model name with a path', body: { model: '../digits', items: [{ inputs: good }] }, status: 400, code: 'invalid_request', path: ['model'] },
  { name: 'unknown version', body: { model: 'digits', version: 9, items: [{ inputs: good }] }, status: 400, code: 'invalid_request', path: ['model'] },
  { name: 'version not an integer', body: { model: 'digits', version: 1.5, items: [{ inputs: good }] }, status: 400, code: 'invalid_request', path: ['version'] },
  { name: 'items missing', body: { model: 'digits' }, status: 400, code: 'invalid_request', path: ['items'] },
  { name: 'items empty', body: { model: 'digits', items: [] }, status: 400, code: 'invalid_request', path: ['items'] },
  { name: 'too many items', body: { model: 'digits', items: new Array(6).fill({ inputs: good }) }, status: 413, code: 'payload_too_large' },
  { name: 'item without inputs', body: { model: 'digits', items: [{ id: 'a' }] }, status: 400, code: 'invalid_request', path: ['items', 0, 'inputs'] },
  { name: 'unknown field on an item', body: { model: 'digits', items: [{ inputs: good, extra: 1 }] }, status: 400, code: 'invalid_request', path: ['items', 0] },
  { name: 'unknown top-level field', body: { model: 'digits', items: [{ inputs: good }], priority: 1 }, status: 400, code: 'invalid_request', path: [] },
  { name: 'duplicate item ids', body: { model: 'digits', items: [{ id: 'a', inputs: good }, { id: 'a', inputs: good }] }, status: 400, code: 'invalid_request', path: ['items', 1, 'id'] },
  { name: 'wrong element count', body: { model: 'digits', items: [{ inputs: { input: [1, 2] } }] }, status: 400, code: 'invalid_request', path: ['items', 0, 'inputs', 'input'] },
  { name: 'non-finite number (1e400)', body: `{"model":"digits","items":[{"inputs":{"input":[1e400${',0'.repeat(63)}]}}]}`, status: 400, code: 'invalid_request', path: ['items', 0, 'inputs', 'input'] },
  { name: 'string in a float input', body: { model: 'digits', items: [{ inputs: { input: ['1', ...new Array(63).fill(0)] } }] }, status: 400, code: 'invalid_request', path: ['items', 0, 'inputs', 'input'] },
  { name: 'unknown input name', body: { model: 'digits', items: [{ inputs: { ...good, other: [1] } }] }, status: 400, code: 'invalid_request', path: ['items', 0, 'inputs', 'other'] },
  { name: 'input deeper than its rank', body: { model: 'digits', items: [{ inputs: { input: [[[1]]] } }] }, status: 400, code: 'invalid_request', path: ['items', 0, 'inputs', 'input'] },
  { name: 'option out of range', body: { model: 'digits', items: [{ inputs: good }], options: { maxAttempts: 0 } }, status: 400, code: 'invalid_request', path: ['options', 'maxAttempts'] },
  { name: 'unknown option', body: { model: 'digits', items: [{ inputs: good }], options: { turbo: true } }, status: 400, code: 'invalid_request', path: ['options'] },
  { name: 'body over the byte limit', body: { model: 'digits', items: [{ inputs: { input: new Array(20_000).fill(1.2345) } }] }, status: 413, code: 'payload_too_large' },
  { name: 'wrong content type', body: 'model=digits', status: 415, code: 'invalid_request', headers: { 'content-type': 'text/plain' } },
];

describe('POST /v1/batches refuses bad requests before anything reaches Temporal', () => {
  for (const c of cases) {
    test(`${c.name} -> ${c.status}`, async () => {
      const res = await http(base, 'POST', '/v1/batches', c.body, c.headers);
      assert.equal(res.status, c.status, JSON.stringify(res.body));
      assert.equal(res.body.error.code, c.code);
      assert.equal(typeof res.body.error.message, 'string');
      assert.doesNotMatch(JSON.stringify(res.body), /\bat .*\.(ts|js):\d+/, 'no stack trace');
      if (c.path) {
        assert.ok(
          res.body.error.details?.some((d: { path: unknown[] }) => JSON.stringify(d.path) === JSON.stringify(c.path)),
          `a detail at ${JSON.stringify(c.path)}: ${JSON.stringify(res.body.error.details)}`,
        );
      }
      assert.deepEqual(calls, [], 'nothing was submitted');
      assert.equal((await http(base, 'GET', '/healthz')).status, 200, 'still healthy');
    });
  }
});

describe('other errors', () => {
  test('a valid batch reaches the client and answers 202', async () => {
    const res = await http(base, 'POST', '/v1/batches', { model: 'digits', items: [{ inputs: good }] });
    assert.equal(res.status, 202);
    assert.deepEqual(calls.splice(0), ['submit']);
  });

  test('Temporal unreachable -> 503 with Retry-After, not a crash', async () => {
    temporalDown = true;
    try {
      const res = await http(base, 'POST', '/v1/batches', { model: 'digits', items: [{ inputs: good }] });
      assert.equal(res.status, 503);
      assert.equal(res.body.error.code, 'unavailable');
      assert.ok(Number(res.headers.get('retry-after')) > 0);
      assert.deepEqual(calls.splice(0), ['submit']);
      assert.equal((await http(base, 'GET', '/healthz')).status, 200);
    } finally {
      temporalDown = false;
    }
  });

  test('a malformed batch id is 404 without asking Temporal', async () => {
    const res = await http(base, 'GET', '/v1/batches/not-an-id');
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
    assert.deepEqual(calls, []);
  });

  test('an unknown route is 404 in the error shape', async () => {
    const res = await http(base, 'GET', '/v1/nothing-here');
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
  });
});
