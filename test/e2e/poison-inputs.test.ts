// Poison inputs against the real stack (dev server, worker, API). Finite JSON numbers that a float32 input cannot
// hold (1e39) are refused at submission, on every route that takes inputs, with a 400 naming the item and the field,
// and nothing is stored. Inputs a float32 can hold but that make the model overflow inside (the digits model given
// 3.4028235e38 in every pixel computes NaN) fail their item once, as NonFiniteOutput, never as a success, and the
// rest of the batch succeeds.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ErrorBody } from '../../src/api/openapi.js';
import type { Config } from '../../src/config.js';
import { PermanentItemFailure } from '../../src/contracts/item-failure-type.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { itemStoreFile } from '../../src/stores/sqlite-item-store.js';
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

const rows = heldout('digits').map((r) => r.inputs.input);
/** A row of 64 pixels with `value` at pixel 5. */
const withPixel5 = (value: number) => rows[0]!.map((v, i) => (i === 5 ? value : v));
/** The largest finite float32, as a client would write it: accepted, and the digits model overflows to NaN on it. */
const FLOAT32_MAX = 3.4028235e38;
const overflowing = new Array<number>(64).fill(FLOAT32_MAX);

interface Refusal {
  name: string;
  path: string;
  json?: unknown;
  ndjson?: unknown[];
  /** The field path a detail must name (/v1 shape); undefined for /v2's `{ error }`. */
  at?: (string | number)[];
  message: RegExp;
}

const REFUSALS: Refusal[] = [
  {
    name: 'a JSON batch whose item 3 holds 1e39',
    path: '/v1/batches',
    json: {
      model: 'digits',
      items: [0, 1, 2, 3].map((i) => ({ inputs: { input: i === 3 ? withPixel5(1e39) : rows[i] } })),
    },
    at: ['items', 3, 'inputs', 'input'],
    message: /items\.3\.inputs\.input: input 'input': element 5 is 1e\+39, outside float32 range/,
  },
  {
    name: 'a JSON batch holding -1e39',
    path: '/v1/batches',
    json: { model: 'digits', items: [{ inputs: { input: withPixel5(-1e39) } }] },
    at: ['items', 0, 'inputs', 'input'],
    message: /element 5 is -1e\+39, outside float32 range/,
  },
  {
    name: 'a JSON batch holding 3.5e38',
    path: '/v1/batches',
    json: { model: 'digits', items: [{ inputs: { input: withPixel5(3.5e38) } }] },
    at: ['items', 0, 'inputs', 'input'],
    message: /element 5 is 3\.5e\+38, outside float32 range/,
  },
  {
    name: 'an NDJSON batch whose line 2 holds 1e39',
    path: '/v1/batches?model=digits',
    ndjson: [{ inputs: { input: rows[0] } }, { inputs: { input: withPixel5(1e39) } }],
    at: ['line', 2, 'inputs', 'input'],
    message: /outside float32 range/,
  },
  {
    name: 'a sync prediction holding 1e39',
    path: '/v1/predict',
    json: { model: 'digits', inputs: { input: withPixel5(1e39) } },
    at: ['inputs', 'input'],
    message: /element 5 is 1e\+39, outside float32 range/,
  },
  {
    name: 'an async prediction holding 1e39',
    path: '/v1/predict/async',
    json: { model: 'digits', inputs: { input: withPixel5(1e39) } },
    at: ['inputs', 'input'],
    message: /outside float32 range/,
  },
  {
    name: 'a KServe infer request whose row 1 holds 1e39',
    path: '/v2/models/digits/infer',
    json: { inputs: [{ name: 'input', shape: [2, 64], datatype: 'FP32', data: [...rows[0]!, ...withPixel5(1e39)] }] },
    message: /element 5 is 1e\+39, outside float32 range/,
  },
];

describe('poison inputs against the real stack', () => {
  let temporal: TestTemporal;
  let config: Config;
  let worker: StartedWorker;
  let api: StartedServer;

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    config = testConfig(temporal.address);
    worker = await startWorker(config, testLog, { workflowBundle: await workflowBundle() });
    api = await startServer(config, testLog);
  });

  after(async () => {
    await api?.close();
    await worker?.shutdown();
    await temporal?.stop();
  });

  const post = async (c: Pick<Refusal, 'path' | 'json' | 'ndjson'>) => {
    const body = c.ndjson ? c.ndjson.map((l) => JSON.stringify(l)).join('\n') + '\n' : JSON.stringify(c.json);
    const res = await fetch(`${api.url}${c.path}`, {
      method: 'POST',
      headers: { 'content-type': c.ndjson ? 'application/x-ndjson' : 'application/json' },
      body,
    });
    const text = await res.text();
    return { status: res.status, text, body: JSON.parse(text) };
  };

  for (const c of REFUSALS) {
    test(`400: ${c.name}`, async () => {
      const res = await post(c);

      assert.equal(res.status, 400, res.text);
      if (!c.at) {
        assert.match(res.body.error, c.message); // the protocol's { "error": "<message>" }
        return;
      }
      assert.ok(ErrorBody.safeParse(res.body).success, `the one error shape: ${res.text}`);
      assert.equal(res.body.error.code, 'invalid_request');
      const detail = (res.body.error.details as { path: unknown[]; message: string }[]).find(
        (d) => JSON.stringify(d.path) === JSON.stringify(c.at),
      );
      assert.ok(detail, `a detail at ${JSON.stringify(c.at)}: ${res.text}`);
      assert.match(`${c.at.join('.')}: ${detail.message}`, c.message);
    });
  }

  test('the refused requests stored no batch and no item', () => {
    assert.deepEqual(storeCounts(config), { batches: 0, items: 0 });
  });

  for (const itemsPerActivity of [1, 3]) {
    test(`itemsPerActivity ${itemsPerActivity}: an item the model overflows on fails as NonFiniteOutput`, async () => {
      const items = [rows[1], overflowing, rows[2]].map((input, i) => ({ id: `r${i}`, inputs: { input } }));
      const created = await http(api.url, 'POST', '/v1/batches', {
        model: 'digits',
        items,
        options: { itemsPerActivity, maxAttempts: 3, initialIntervalMs: 1000 },
      });
      assert.equal(created.status, 202, JSON.stringify(created.body)); // 3.4028235e38 is a float32: accepted

      const batch = await waitFor('the batch to end', async () => {
        const res = await http(api.url, 'GET', `/v1/batches/${created.body.id}`);
        return res.body.status !== 'running' ? res.body : undefined;
      });

      assert.equal(batch.counts.succeeded, 2, JSON.stringify(batch.counts));
      assert.equal(batch.counts.failed, 1, JSON.stringify(batch.counts));
      const failed = (await http(api.url, 'GET', `/v1/batches/${created.body.id}/items?status=failed`)).body.items;
      assert.equal(failed.length, 1, JSON.stringify(failed));
      assert.equal(failed[0].id, 'r1');
      assert.equal(failed[0].attempts, 1, 'not retried');
      assert.equal(failed[0].error.type, PermanentItemFailure.NonFiniteOutput);
      assert.match(failed[0].error.message, /model 'digits' v1 gave a non-finite output .*NaN at probabilities\[\d\]/);
      assert.equal(failed[0].result, undefined);
    });
  }

  test('an async prediction the model overflows on fails as NonFiniteOutput', async () => {
    const started = await post({
      path: '/v1/predict/async',
      json: { model: 'digits', inputs: { input: overflowing } },
    });
    assert.equal(started.status, 202, started.text);

    const task = await waitFor('the task to end', async () => {
      const res = await http(api.url, 'GET', `/v1/tasks/${started.body.taskId}`);
      return res.body.status !== 'running' ? res.body : undefined;
    });

    assert.equal(task.status, 'failed', JSON.stringify(task));
    assert.equal(task.error.type, PermanentItemFailure.NonFiniteOutput);
    assert.match(task.error.message, /non-finite output/);
    assert.equal(task.result, undefined);
  });
});

/** Batches and items in the item store. */
function storeCounts(config: Config): { batches: number; items: number } {
  const db = new Database(itemStoreFile(config), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(
        'SELECT (SELECT count(*) FROM batches) AS batches, (SELECT COALESCE(SUM(n), 0) FROM item_blocks) AS items',
      )
      .get() as { batches: number; items: number };
  } finally {
    db.close();
  }
}
