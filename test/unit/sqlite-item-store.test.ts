// The item store (claim check): items in, results out, idempotent by (batch, item), atomic batches, shared file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterEach, test } from 'node:test';
import { BatchOptions } from '../../src/contracts/batch.js';
import { DuplicateItemIdError, type StoredBatch } from '../../src/stores/item-store.js';
import { SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { tempDir } from '../helpers/temporal.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function open(): { store: SqliteItemStore; file: string } {
  const dir = tempDir('store');
  dirs.push(dir);
  const file = path.join(dir, 'batchline.db');
  return { store: new SqliteItemStore(file), file };
}

const batch = (id: string, total: number): StoredBatch => ({
  id,
  model: 'digits',
  total,
  options: BatchOptions.parse({}),
  metadata: { team: 'ml' },
  createdAt: '2026-11-23T00:00:00.000Z',
  tenant: 'default',
});
const items = (n: number, withIds = false) =>
  Array.from({ length: n }, (_, i) => ({ ...(withIds ? { id: `c-${i}` } : {}), inputs: { input: [i, i + 1] } }));
const success = (index: number, label = 'x') => ({
  index,
  status: 'succeeded' as const,
  attempts: 1,
  result: { model: 'digits', version: 1, label, outputs: {} },
  startedAt: 't0',
  finishedAt: 't1',
});
const failure = (index: number) => ({
  index,
  status: 'failed' as const,
  attempts: 3,
  error: { type: 'Error', message: 'boom' },
  startedAt: 't0',
  finishedAt: 't1',
});

test('a batch and its items round-trip in index order; ids default to the index', () => {
  const { store } = open();
  store.createBatch(batch('b1', 1203), items(1203)); // crosses the 500-row insert chunks
  assert.deepEqual(store.getBatch('b1'), batch('b1', 1203));
  const got = store.getItems('b1', 498, 5);
  assert.deepEqual(
    got.map((i) => [i.index, i.id, i.inputs]),
    [498, 499, 500, 501, 502].map((i) => [i, String(i), { input: [i, i + 1] }]),
  );
  assert.equal(store.getItems('b1', 1200, 10).length, 3);
  assert.equal(store.getBatch('nope'), undefined);
  store.close();
});

test('a success is recorded once: a second write for the same item is ignored', () => {
  const { store } = open();
  store.createBatch(batch('b', 2), items(2));
  assert.equal(store.putResult('b', success(0, 'first')), true);
  assert.equal(store.putResult('b', success(0, 'second')), false);
  assert.equal(store.putResult('b', failure(0)), false, 'a late failure never replaces a success');
  assert.equal(store.getResult('b', 0)?.result?.label, 'first');
  assert.deepEqual(store.countResults('b'), { succeeded: 1, failed: 0 });
  store.close();
});

test('a failure is replaced by a later success (a retried dead-letter item)', () => {
  const { store } = open();
  store.createBatch(batch('b', 1), items(1));
  assert.equal(store.putResult('b', failure(0)), true);
  assert.equal(store.getResult('b', 0)?.error?.message, 'boom');
  assert.equal(store.putResult('b', success(0)), true);
  const r = store.getResult('b', 0)!;
  assert.equal(r.status, 'succeeded');
  assert.equal(r.error, undefined);
  store.close();
});

test('results page by cursor and filter by status, with client ids', () => {
  const { store } = open();
  store.createBatch(batch('b', 10), items(10, true));
  for (let i = 0; i < 10; i++) store.putResult('b', i % 3 === 0 ? failure(i) : success(i));
  const first = store.listResults('b', { limit: 4 });
  assert.deepEqual(
    first.results.map((r) => r.index),
    [0, 1, 2, 3],
  );
  assert.equal(first.results[1]!.id, 'c-1');
  assert.equal(first.nextCursor, 4);
  const rest = store.listResults('b', { cursor: first.nextCursor, limit: 100 });
  assert.deepEqual(
    rest.results.map((r) => r.index),
    [4, 5, 6, 7, 8, 9],
  );
  assert.equal(rest.nextCursor, undefined);
  assert.deepEqual(
    store.listResults('b', { status: 'failed' }).results.map((r) => r.index),
    [0, 3, 6, 9],
  );
  assert.deepEqual(store.countResults('b'), { succeeded: 6, failed: 4 });
  store.close();
});

test('a batch is stored atomically: a duplicate client id or a wrong count stores nothing', () => {
  const { store } = open();
  const dup = [...items(3, true), { id: 'c-1', inputs: {} }];
  assert.throws(
    () => store.createBatch(batch('d', 4), dup),
    (err: unknown) => err instanceof DuplicateItemIdError && err.itemId === 'c-1' && err.index === 3,
    'names the duplicate id and the item that repeats it',
  );
  assert.equal(store.getBatch('d'), undefined);
  assert.equal(store.getItems('d', 0, 10).length, 0);
  assert.throws(() => store.createBatch(batch('w', 5), items(4)), /4 items stored, 5 declared/);
  assert.equal(store.getItems('w', 0, 10).length, 0);
  store.close();
});

test('given ids and default ids (the index) are one namespace: a given id that reads as another item’s index is a duplicate', () => {
  const { store } = open();
  const dup = (batchId: string, run: () => void) => {
    try {
      run();
    } catch (err) {
      assert.ok(err instanceof DuplicateItemIdError, String(err));
      assert.equal(store.getBatch(batchId), undefined);
      return [err.itemId, err.index];
    }
    return assert.fail('stored a batch with two items of one id');
  };
  // Within one append, either order: the later item is named.
  assert.deepEqual(
    dup('a', () => store.createBatch(batch('a', 2), [{ id: '1', inputs: {} }, { inputs: {} }])),
    ['1', 1],
  );
  assert.deepEqual(
    dup('b', () => store.createBatch(batch('b', 2), [{ inputs: {} }, { id: '0', inputs: {} }])),
    ['0', 1],
  );
  // Across appends (an NDJSON submission), either order; the clashing append stores nothing, earlier ones stay.
  store.appendItems('c', 0, [{ id: '700', inputs: {} }, ...items(499)]);
  assert.deepEqual(
    dup('c', () => store.appendItems('c', 500, items(500))),
    ['700', 700],
  );
  assert.equal(store.getItems('c', 0, 1000).length, 500);
  store.appendItems('d', 0, items(500));
  assert.deepEqual(
    dup('d', () =>
      store.appendItems('d', 500, [
        { id: 'x', inputs: {} },
        { id: '3', inputs: {} },
      ]),
    ),
    ['3', 501],
  );
  assert.equal(store.getItems('d', 0, 1000).length, 500);
  // Only the index's own spelling clashes: these ids sit beside a default item 7.
  const near = ['07', '7.0', ' 7', '-0', '99999999999999999999'];
  store.createBatch(batch('e', 8 + near.length), [...items(8), ...near.map((id) => ({ id, inputs: {} }))]);
  assert.deepEqual(
    near.map((id) => store.findItemIndex('e', id)),
    [8, 9, 10, 11, 12],
  );
  assert.equal(store.findItemIndex('e', '7'), 7, 'a default id is found by its index');
  assert.equal(store.findItemIndex('e', '13'), undefined);
  assert.deepEqual(
    store.getItems('e', 6, 3).map((i) => i.id),
    ['6', '7', '07'],
  );
  store.close();
});

test('a file from before default ids were stored empty keeps its ids and loses its full id index', () => {
  const dir = tempDir('store');
  dirs.push(dir);
  const file = path.join(dir, 'batchline.db');
  const old = new Database(file);
  old.exec(`CREATE TABLE items (batch_id TEXT NOT NULL, idx INTEGER NOT NULL, client_id TEXT NOT NULL, inputs TEXT NOT NULL,
    PRIMARY KEY (batch_id, idx)) WITHOUT ROWID;
    CREATE UNIQUE INDEX items_by_client_id ON items (batch_id, client_id);
    INSERT INTO items VALUES ('old', 0, '0', '{}'), ('old', 1, 'given', '{}'), ('old', 2, '2', '{}');`);
  old.close();
  const store = new SqliteItemStore(file);
  assert.deepEqual(
    store.getItems('old', 0, 3).map((i) => i.id),
    ['0', 'given', '2'],
  );
  assert.deepEqual(
    ['0', 'given', '2'].map((id) => store.findItemIndex('old', id)),
    [0, 1, 2],
  );
  store.createBatch(batch('new', 3), items(3));
  assert.deepEqual(
    store.getItems('new', 0, 3).map((i) => i.id),
    ['0', '1', '2'],
  );
  store.close();
  const check = new Database(file, { readonly: true });
  const indexes = (
    check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'").all() as {
      name: string;
    }[]
  ).map((r) => r.name);
  const stored = check.prepare("SELECT client_id FROM items WHERE batch_id = 'new'").all();
  check.close();
  assert.deepEqual(
    indexes.filter((n) => !n.startsWith('sqlite_autoindex')),
    ['items_by_explicit_id'],
  );
  assert.deepEqual(stored, [{ client_id: '' }, { client_id: '' }, { client_id: '' }], 'default ids are stored empty');
});

test(
  'background appends run on their own thread in the order made, and reject as appendItems throws',
  { timeout: 20_000 },
  async () => {
    const { store } = open();
    // Three appends in flight at once, as an NDJSON submission makes them: all stored, at their own indexes.
    const chunks = [items(500, true), items(500).map((it) => ({ ...it, inputs: { input: ['second'] } })), items(7)];
    await Promise.all(chunks.map((chunk, i) => store.appendItemsInBackground('a', i * 500, chunk)));
    store.commitBatch(batch('a', 1007));
    const stored = store.getItems('a', 0, 2000);
    assert.equal(stored.length, 1007);
    assert.deepEqual(
      [stored[0]!.id, stored[499]!.id, stored[500]!.id, stored[1006]!.id],
      ['c-0', 'c-499', '500', '1006'],
    );
    assert.deepEqual(stored[500]!.inputs, { input: ['second'] }, 'inputs stored as sent');
    // Appends made together run in the order made: of two that give one id, the later append is the one refused,
    // with DuplicateItemIdError naming its item, and it stores nothing.
    const [first, second] = await Promise.allSettled([
      store.appendItemsInBackground('b', 0, [
        { id: 'x', inputs: {} },
        { id: 'y', inputs: {} },
      ]),
      store.appendItemsInBackground('b', 2, [
        { id: 'z', inputs: {} },
        { id: 'x', inputs: {} },
      ]),
    ]);
    assert.equal(first.status, 'fulfilled');
    assert.ok(second.status === 'rejected' && second.reason instanceof DuplicateItemIdError, String(second.status));
    assert.deepEqual([second.reason.itemId, second.reason.index], ['x', 3]);
    assert.deepEqual(
      store.getItems('b', 0, 10).map((i) => i.id),
      ['x', 'y'],
    );
    // Any other fault keeps its message and SQLite code (here: the staged batch's items exist already).
    await assert.rejects(store.appendItemsInBackground('a', 0, items(1)), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SQLITE_CONSTRAINT_PRIMARYKEY');
      return true;
    });
    // Closing fails what is still in flight instead of leaving it hanging; later appends are refused.
    const inFlight = store.appendItemsInBackground('c', 0, items(500));
    store.close();
    await assert.rejects(inFlight, /closed/);
    await assert.rejects(store.appendItemsInBackground('c', 500, items(1)), /closed/);
  },
);

test('deleteBatch removes the batch, its items and its results', () => {
  const { store } = open();
  store.createBatch(batch('b', 2), items(2));
  store.putResult('b', success(0));
  store.deleteBatch('b');
  assert.equal(store.getBatch('b'), undefined);
  assert.equal(store.getItems('b', 0, 2).length, 0);
  assert.deepEqual(store.countResults('b'), { succeeded: 0, failed: 0 });
  store.close();
});

test('two stores on one file (the API and a worker) see each other’s writes', () => {
  const { store: api, file } = open();
  const worker = new SqliteItemStore(file);
  api.createBatch(batch('b', 3), items(3));
  assert.deepEqual(worker.getItems('b', 1, 1)[0]?.inputs, { input: [1, 2] });
  worker.putResult('b', success(2));
  assert.equal(api.getResult('b', 2)?.status, 'succeeded');
  worker.close();
  api.close();
});

test('a batch commits while another process writes the same file without interruption (no SQLITE_BUSY_SNAPSHOT)', async () => {
  const { store: api, file } = open();
  // Another writer, as the worker writing results: commits to the same file in a loop from its own thread.
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const writer = new Worker(
    `const Database = require('better-sqlite3');
     const { parentPort, workerData } = require('node:worker_threads');
     const db = new Database(workerData.file);
     db.pragma('busy_timeout = 10000');
     db.pragma('synchronous = OFF');
     db.exec('CREATE TABLE IF NOT EXISTS noise (n INTEGER)');
     const insert = db.prepare('INSERT INTO noise (n) VALUES (?)');
     parentPort.postMessage('writing');
     for (let n = 0; Atomics.load(workerData.stop, 0) === 0; n++) insert.run(n);
     db.close();`,
    { eval: true, workerData: { file, stop } },
  );
  const ended = new Promise((r) => writer.once('exit', r));
  try {
    await new Promise((r) => writer.once('message', r));
    // Staged like an NDJSON submission: items appended in chunks, then the batch committed (a count, then an insert).
    for (let b = 0; b < 10; b++) {
      const staged = batch(`s-${b}`, 20_000);
      for (let from = 0; from < staged.total; from += 500) api.appendItems(staged.id, from, items(500));
      api.commitBatch(staged);
      assert.equal(api.getBatch(staged.id)?.total, 20_000);
    }
  } finally {
    Atomics.store(stop, 0, 1);
    await ended;
    api.close();
  }
});

test(
  'nextWrite wakes on another connection’s write long before its timeout, and times out or aborts without one',
  { timeout: 10_000 },
  async () => {
    const { store: api, file } = open();
    api.createBatch(batch('b', 3), items(3));
    const worker = new SqliteItemStore(file);
    try {
      // No write: resolves at its timeout.
      const started = Date.now();
      await api.nextWrite(50);
      assert.ok(Date.now() - started >= 45, 'waited out its timeout');
      // A write by the other connection (the worker, in production) wakes it: waiting out 60 s would fail the 10 s limit.
      const woke = api.nextWrite(60_000);
      setTimeout(() => worker.putResult('b', success(1)), 20);
      await woke;
      assert.equal(api.listEvents('b', 0, 10).length, 1, 'the write that woke it is readable');
      // An abort ends the wait.
      const stop = new AbortController();
      const aborted = api.nextWrite(60_000, stop.signal);
      stop.abort();
      await aborted;
    } finally {
      worker.close();
      api.close();
    }
  },
);
