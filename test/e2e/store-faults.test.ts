// The item store's disk fills up under the real stack (dev server, a worker, the API): DATA_DIR is a small tmpfs of
// the test's own, filled until ENOSPC while Temporal's data stays elsewhere and keeps working. Requests that must
// write answer 503 `unavailable` with Retry-After and a message about storage (never a 500, never "Temporal"),
// reads go on, readiness says which check fails, an item whose result cannot be recorded is retried, and once space
// is freed everything works again. Mounting a tmpfs needs root: elsewhere the whole file is skipped, saying why.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import Database from 'better-sqlite3';
import { createActivities } from '../../activities/index.js';
import { STORE_PROBE_TIMEOUT_MS } from '../../src/api/routes/health.js';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import type { Config } from '../../src/config.js';
import { InferenceRuntime } from '../../src/runtime/inference.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { itemStoreFile, SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
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
import { mountTmpfs } from '../helpers/tmpfs.js';
import { GatedRuntime, HELD } from './online-stack.js';
import { connectTemporal } from '../../src/client/connection.js';

const rows = heldout('digits');
const DISK_FULL = 'the item store cannot write (disk full); try again shortly';
const fsys = mountTmpfs('store-faults', 8 << 20);

describe('a full disk under the item store', { skip: typeof fsys === 'string' ? fsys : false }, () => {
  const disk = fsys as Exclude<typeof fsys, string>;
  let temporal: TestTemporal;
  let config: Config;
  let store: SqliteItemStore;
  let gate: GatedRuntime;
  let worker: StartedWorker;
  /** The API as configured by default: its rate limit writes first, for every request that creates work. */
  let api: StartedServer;
  /** An API without a rate limit: a submission's first write is the item store's own. */
  let unlimited: StartedServer;
  let client: Client;
  let done: string;
  let held: string;

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal(); // its data dir is not on the tmpfs
    config = testConfig(temporal.address, { DATA_DIR: disk.dir });
    store = new SqliteItemStore(itemStoreFile(config));
    gate = new GatedRuntime(new InferenceRuntime(new ModelRepository(config.MODEL_REPOSITORY), { threads: 1 }));
    worker = await startWorker(config, testLog, {
      workflowBundle: await workflowBundle(),
      activities: createActivities({ runtime: gate, store }),
    });
    api = await startServer(config, testLog);
    unlimited = await startServer({ ...config, RATE_LIMIT_PER_MINUTE: 0 }, testLog);
    client = new Client({ connection: await connectTemporal(temporal.address) });
  });

  after(async () => {
    gate?.open();
    await api?.close();
    await unlimited?.close();
    await worker?.shutdown();
    await gate?.inner.close();
    await store?.close();
    await client?.connection.close();
    await temporal?.stop();
    disk.free();
    disk.unmount();
  });

  const batch = (n: number, first = 0) => ({
    model: 'digits',
    items: rows.slice(first, first + n).map((r) => ({ inputs: r.inputs })),
  });
  const submit = (server: StartedServer, body: unknown) => http(server.url, 'POST', '/v1/batches', body);
  const get = (route: string, server = api) => http(server.url, 'GET', route);

  /** The answer every request that must write gets while the disk is full. */
  const refusedForStorage = (res: Awaited<ReturnType<typeof http>>, what: string) => {
    assert.equal(res.status, 503, `${what}: ${JSON.stringify(res.body)}`);
    assert.deepEqual(res.body, { error: { code: 'unavailable', message: DISK_FULL } }, what);
    assert.equal(res.headers.get('retry-after'), '5', what);
  };

  test('before the disk fills: ready, the item store writable; one batch ends, one waits in its items', async () => {
    const ready = await get('/readyz');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.deepEqual(ready.body.checks.itemStore, { ok: true, detail: 'sqlite: writable' });

    const first = await submit(api, batch(3));
    assert.equal(first.status, 202, JSON.stringify(first.body));
    done = first.body.id;
    await waitFor(`batch ${done} to record its end`, () => store.getEnd(done));

    const heldItems = rows.slice(0, 2).map((r) => ({ inputs: { input: [HELD, ...r.inputs.input.slice(1)] } }));
    // Retried every second, up to 100 attempts: the disk is full for a few of them.
    const options = { maxAttempts: 100, initialIntervalMs: 1000, backoffCoefficient: 1, maximumIntervalMs: 1000 };
    const second = await submit(api, { model: 'digits', items: heldItems, options });
    assert.equal(second.status, 202, JSON.stringify(second.body));
    held = second.body.id;
    await waitFor('both held items to wait at the gate', () => gate.held === 2);
  });

  test("with the disk full, a submission is 503 unavailable with Retry-After and the storage's reason", async () => {
    disk.fill();
    refusedForStorage(await submit(api, batch(5)), 'JSON, through the rate limit');
    refusedForStorage(await submit(unlimited, batch(5)), 'JSON, into the item store');
    const ndjson = await fetch(`${unlimited.url}/v1/batches?model=digits`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: rows.map((r) => JSON.stringify({ inputs: r.inputs })).join('\n') + '\n',
    });
    refusedForStorage(
      { status: ndjson.status, headers: ndjson.headers, body: await ndjson.json() },
      'NDJSON, staged on the append thread',
    );
    const predict = { model: 'digits', inputs: rows[0]!.inputs };
    refusedForStorage(await http(api.url, 'POST', '/v1/predict', predict), 'sync predict, through the rate limit');
  });

  test('with the disk full, reads answer (an ended and a running batch); predicting without a write runs', async () => {
    const ended = await get(`/v1/batches/${done}`);
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    assert.equal(ended.body.status, 'completed');
    const running = await get(`/v1/batches/${held}`);
    assert.equal(running.status, 200, JSON.stringify(running.body));
    assert.equal(running.body.status, 'running');
    const predicted = await http(unlimited.url, 'POST', '/v1/predict', { model: 'digits', inputs: rows[0]!.inputs });
    assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
    assert.equal(predicted.body.result.label, rows[0]!.expected.labelName);
  });

  test("with the disk full, readiness is 503: the item store's check fails, Temporal's pass", async () => {
    const ready = await get('/readyz');
    assert.equal(ready.status, 503, JSON.stringify(ready.body));
    assert.equal(ready.headers.get('retry-after'), '5');
    assert.equal(ready.body.status, 'not_ready');
    assert.deepEqual(ready.body.checks.itemStore, { ok: false, detail: 'sqlite: disk full' });
    assert.equal(ready.body.checks.temporal.ok, true);
    assert.equal(ready.body.checks.batchWorker.ok, true);
    assert.equal((await get('/v2/health/ready')).status, 503);
  });

  test('an item whose result cannot be recorded waits for the store on its first attempt, heartbeating', async () => {
    gate.open(); // the held items run now, and cannot record their results
    const handle = client.workflow.getHandle(batchWorkflowId(held));
    const beats = async () => {
      const { raw } = await handle.describe();
      return (raw.pendingActivities ?? []).map((a) => ({
        attempt: a.attempt ?? 0,
        beat: Number(a.lastHeartbeatTime?.seconds ?? 0) * 1000 + Math.floor((a.lastHeartbeatTime?.nanos ?? 0) / 1e6),
      }));
    };
    const first = await waitFor('both held items to be running', async () => {
      const b = await beats();
      return b.length === 2 && b.every((a) => a.beat > 0) ? b : undefined;
    });
    // Later heartbeats from the same attempts: alive while they wait, and not failed for the store.
    const later = await waitFor('both to heartbeat again while the disk is full', async () => {
      const b = await beats();
      return b.length === 2 && b.every((a, k) => a.beat > first[k]!.beat) ? b : undefined;
    });
    assert.deepEqual(
      later.map((a) => a.attempt),
      [1, 1],
      'still the first attempts: a full disk uses up no attempt',
    );
  });

  test('with the space freed: ready again, a submission is accepted, and the held items finish', async () => {
    disk.free();
    const ready = await get('/readyz');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.deepEqual(ready.body.checks.itemStore, { ok: true, detail: 'sqlite: writable' });

    const accepted = await submit(api, batch(5));
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    for (const id of [held, accepted.body.id as string]) {
      const end = await waitFor(`batch ${id} to end`, async () => {
        const res = await get(`/v1/batches/${id}`);
        return res.body.status !== 'running' ? res.body : undefined;
      });
      assert.equal(end.status, 'completed', JSON.stringify(end));
      assert.equal(end.counts.succeeded, end.total, JSON.stringify(end));
    }
    const items = await get(`/v1/batches/${held}/items`);
    assert.deepEqual(
      items.body.items.map((i: { status: string; attempts: number }) => [i.status, i.attempts]),
      [
        ['succeeded', 1],
        ['succeeded', 1],
      ],
      `each held item succeeded on the attempt that waited for the store: ${JSON.stringify(items.body)}`,
    );
  });

  test('a store locked past the probe wait answers readiness in time, not ready; unlocked, ready', async () => {
    const holder = new Database(itemStoreFile(config));
    try {
      holder.exec('BEGIN IMMEDIATE'); // every other writer now waits out its 10 s busy timeout
      const started = Date.now();
      const ready = await get('/readyz');
      const tookMs = Date.now() - started;
      assert.equal(ready.status, 503, JSON.stringify(ready.body));
      assert.deepEqual(ready.body.checks.itemStore, {
        ok: false,
        detail: `sqlite: no answer to a write within ${STORE_PROBE_TIMEOUT_MS} ms`,
      });
      assert.ok(tookMs < 8_000, `readiness took ${tookMs} ms: as long as the lock, not the probe's wait`);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    await waitFor('readiness once the lock is released', async () => (await get('/readyz')).status === 200);
  });
});
