// What only the SQLite item store does: files written by older releases, several processes on one file, the append
// thread. The behaviour both backends share is in item-store-contract.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterEach, test } from 'node:test';
import { BatchOptions, itemCounts, type BatchEnd } from '../../src/contracts/batch.js';
import { SCHEMA_VERSION, SchemaTooNewError } from '../../src/stores/migrations.js';
import { StoreFault, StoreUnavailableError } from '../../src/stores/store-unavailable.js';
import { itemStoreFile, SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { appendItems, storedBatch, storedItems } from '../helpers/stores.js';
import { tempDir } from '../helpers/temporal.js';

const dirs: string[] = [];
const stores: SqliteItemStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

function newFile(): string {
  const dir = tempDir('store');
  dirs.push(dir);
  return path.join(dir, 'batchline.db');
}

/** A store on `file`, closed after the test. */
function openStore(file: string, options?: ConstructorParameters<typeof SqliteItemStore>[1]): SqliteItemStore {
  const store = new SqliteItemStore(file, options);
  stores.push(store);
  return store;
}

function open(): { store: SqliteItemStore; file: string } {
  const file = newFile();
  return { store: openStore(file), file };
}

/** Runs `sql` on the file directly, as an older release (or an operator) would. */
function onFile<T>(file: string, run: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return run(db);
  } finally {
    db.close();
  }
}

const versions = (file: string) =>
  onFile(file, (db) =>
    (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]).map(
      (r) => r.version,
    ),
  );
const every = Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1);

const batch = storedBatch;
const items = storedItems;
const success = (index: number, label = 'x') => ({
  index,
  status: 'succeeded' as const,
  attempts: 1,
  result: { model: 'digits', version: 1, label, outputs: {} },
  startedAt: 't0',
  finishedAt: 't1',
});
const ended = (batchId: string, status: BatchEnd['status']): BatchEnd => ({
  status,
  summary: {
    id: batchId,
    model: 'digits',
    status,
    total: 1,
    counts: { ...itemCounts(0), succeeded: 1 },
    createdAt: '2026-11-23T00:00:00.000Z',
    updatedAt: '2026-11-23T00:01:00.000Z',
  },
});

test('the store lives at <DATA_DIR>/batchline.db, and opening it creates the directory', async () => {
  const dir = tempDir('store');
  dirs.push(dir);
  const file = itemStoreFile({ DATA_DIR: path.join(dir, 'not', 'yet') });
  assert.equal(file, path.join(dir, 'not', 'yet', 'batchline.db'));
  const store = openStore(file);
  await store.createBatch(batch('b', 1), items(1));
  assert.ok(fs.existsSync(file));
  assert.deepEqual(versions(file), every);
});

test('a file from before default ids were stored empty keeps its ids and loses its full id index', async () => {
  const file = newFile();
  onFile(file, (old) =>
    old.exec(`CREATE TABLE items (batch_id TEXT NOT NULL, idx INTEGER NOT NULL, client_id TEXT NOT NULL,
    inputs TEXT NOT NULL,
    PRIMARY KEY (batch_id, idx)) WITHOUT ROWID;
    CREATE UNIQUE INDEX items_by_client_id ON items (batch_id, client_id);
    INSERT INTO items VALUES ('old', 0, '0', '{}'), ('old', 1, 'given', '{}'), ('old', 2, '2', '{}');`),
  );
  const store = openStore(file);
  assert.deepEqual(
    (await store.getItems('old', 0, 3)).map((i) => i.id),
    ['0', 'given', '2'],
  );
  assert.deepEqual(await Promise.all(['0', 'given', '2'].map((id) => store.findItemIndex('old', id))), [0, 1, 2]);
  await store.createBatch(batch('new', 3), items(3));
  assert.deepEqual(
    (await store.getItems('new', 0, 3)).map((i) => i.id),
    ['0', '1', '2'],
  );
  await store.close();
  stores.splice(0);
  // Since migration 7 the ids clients gave are rows of item_ids (the items in blocks): the old batch's ids move
  // there as they were stored; the new batch's default ids are not stored at all.
  const [indexes, stored] = onFile(file, (check) => [
    (
      check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'item_ids'").all() as {
        name: string;
      }[]
    ).map((r) => r.name),
    check.prepare('SELECT batch_id, idx, client_id FROM item_ids ORDER BY batch_id, idx').all(),
  ]);
  assert.deepEqual(
    indexes.filter((n) => !n.startsWith('sqlite_autoindex')),
    ['item_ids_by_id'],
  );
  assert.deepEqual(
    stored,
    [
      { batch_id: 'old', idx: 0, client_id: '0' },
      { batch_id: 'old', idx: 1, client_id: 'given' },
      { batch_id: 'old', idx: 2, client_id: '2' },
    ],
    'default ids are not stored',
  );
  assert.deepEqual(versions(file), every, 'and the file is migrated to the latest version');
});

test('a file of the first release (no tenant, no webhook, no events) keeps its data and is migrated', async () => {
  const file = newFile();
  // The schema the first release created, with a batch and a result in it.
  onFile(file, (old) =>
    old.exec(`
CREATE TABLE batches (id TEXT PRIMARY KEY, model TEXT NOT NULL, version INTEGER, total INTEGER NOT NULL,
  options TEXT NOT NULL, metadata TEXT, created_at TEXT NOT NULL);
CREATE TABLE items (batch_id TEXT NOT NULL, idx INTEGER NOT NULL, client_id TEXT NOT NULL, inputs TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)) WITHOUT ROWID;
CREATE UNIQUE INDEX items_by_client_id ON items (batch_id, client_id);
CREATE TABLE results (batch_id TEXT NOT NULL, idx INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')), attempts INTEGER NOT NULL, result TEXT, error TEXT,
  started_at TEXT NOT NULL, finished_at TEXT NOT NULL, PRIMARY KEY (batch_id, idx)) WITHOUT ROWID;
INSERT INTO batches VALUES ('old', 'digits', 2, 2, '${JSON.stringify(BatchOptions.parse({}))}', NULL,
  '2025-01-01T00:00:00.000Z');
INSERT INTO items VALUES ('old', 0, 'a', '{"input":[1]}'), ('old', 1, 'b', '{"input":[2]}');
INSERT INTO results VALUES ('old', 0, 'succeeded', 1, '{"model":"digits","version":2,"label":"7","outputs":{}}', NULL,
  't0', 't1');`),
  );
  const store = openStore(file);
  assert.deepEqual(versions(file), every);
  assert.deepEqual(await store.getBatch('old'), {
    id: 'old',
    model: 'digits',
    version: 2,
    total: 2,
    options: BatchOptions.parse({}),
    createdAt: '2025-01-01T00:00:00.000Z',
    tenant: 'default',
  });
  assert.equal((await store.getResult('old', 0))?.result?.label, '7');
  assert.equal(await store.putResult('old', success(0)), false, 'its success is still final');
  assert.equal(await store.putResult('old', success(1)), true);
  assert.equal(await store.findItemIndex('old', 'b'), 1);
  assert.deepEqual(
    (await store.listEvents('old', 0, 10)).map((e) => e.kind === 'item' && [e.index, e.id]),
    [[1, 'b']],
  );
  assert.equal(await store.endBatch('old', ended('old', 'completed')), true);
});

test('a file from before versioned migrations keeps its event log and is migrated', async () => {
  const file = newFile();
  // The last unversioned release's schema (CREATE TABLE IF NOT EXISTS at every start, no schema_migrations).
  onFile(file, (old) =>
    old.exec(`
CREATE TABLE batches (id TEXT PRIMARY KEY, model TEXT NOT NULL, version INTEGER, total INTEGER NOT NULL,
  options TEXT NOT NULL, metadata TEXT, created_at TEXT NOT NULL, tenant TEXT NOT NULL DEFAULT 'default', webhook TEXT);
CREATE TABLE items (batch_id TEXT NOT NULL, idx INTEGER NOT NULL, client_id TEXT NOT NULL, inputs TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)) WITHOUT ROWID;
CREATE UNIQUE INDEX items_by_explicit_id ON items (batch_id, client_id) WHERE client_id <> '';
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, batch_id TEXT NOT NULL, idx INTEGER NOT NULL,
  status TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT, finished_at TEXT NOT NULL);
CREATE INDEX events_by_batch ON events (batch_id, seq);
CREATE TABLE webhook_failures (batch_id TEXT NOT NULL, message_id TEXT NOT NULL, event_type TEXT NOT NULL,
  attempts INTEGER NOT NULL, last_error TEXT NOT NULL, failed_at TEXT NOT NULL,
  PRIMARY KEY (batch_id, message_id)) WITHOUT ROWID;
CREATE TABLE results (batch_id TEXT NOT NULL, idx INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')), attempts INTEGER NOT NULL, result TEXT, error TEXT,
  started_at TEXT NOT NULL, finished_at TEXT NOT NULL, PRIMARY KEY (batch_id, idx)) WITHOUT ROWID;
INSERT INTO batches VALUES ('old', 'digits', NULL, 3, '{}', '{"team":"ml"}', '2026-01-01T00:00:00.000Z', 'acme',
  '{"url":"https://example.com/hook","events":["batch.completed"],"secret":"s"}');
INSERT INTO items VALUES ('old', 0, '', '{}'), ('old', 1, 'given', '{}'), ('old', 2, '', '{}');
INSERT INTO results VALUES ('old', 1, 'failed', 3, NULL, '{"type":"Error","message":"boom"}', 't0', 't1');
INSERT INTO events (batch_id, idx, status, attempts, error, finished_at)
  VALUES ('old', 1, 'failed', 3, '{"type":"Error","message":"boom"}', 't1');
INSERT INTO webhook_failures VALUES ('old', 'm1', 'item.failed', 5, 'HTTP 500', '2026-01-01T00:00:01.000Z');`),
  );
  const store = openStore(file);
  assert.deepEqual(versions(file), every);
  const old = await store.getBatch('old');
  assert.deepEqual(
    [old?.tenant, old?.metadata, old?.webhook?.url],
    ['acme', { team: 'ml' }, 'https://example.com/hook'],
  );
  assert.equal((await store.listFailedDeliveries('old')).length, 1);
  await store.putResult('old', success(0));
  assert.equal(await store.endBatch('old', ended('old', 'failed')), true);
  const events = await store.listEvents('old', 0, 10);
  assert.deepEqual(
    events.map((e) => [e.kind, e.kind === 'item' ? e.id : e.status]),
    [
      ['item', 'given'],
      ['item', '0'],
      ['end', 'failed'],
    ],
    'the old log reads as item events, followed by the new ones',
  );
  assert.deepEqual(
    events.map((e) => e.seq),
    [1, 2, 3],
  );
  // And it ages out like any ended batch.
  const later = new Date(Date.now() + 2 * 60_000);
  assert.deepEqual(await store.deleteExpired({ now: later, retentionMs: 60_000, stagedMs: 60_000 }), {
    batches: 1,
    uploads: 0,
  });
});

test('a file migrated by a newer batchline is refused, naming the file and both versions', () => {
  const { file } = open();
  onFile(file, (db) =>
    db
      .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
      .run(SCHEMA_VERSION + 1, 'from the future', new Date().toISOString()),
  );
  assert.throws(
    () => openStore(file),
    (err: unknown) =>
      err instanceof SchemaTooNewError &&
      err.message.includes(file) &&
      err.message.includes(`version ${SCHEMA_VERSION + 1}, newer than this batchline knows (${SCHEMA_VERSION})`),
  );
});

test(
  'appends run on a thread of their own; other faults keep their SQLite code; close fails what is in flight',
  { timeout: 20_000 },
  async () => {
    const { store } = open();
    // Storing 20,000 items takes many milliseconds: the caller's event loop keeps turning meanwhile.
    let turns = 0;
    const ticking = setInterval(() => turns++, 1);
    try {
      await appendItems(store, 'big', 0, items(20_000, true));
    } finally {
      clearInterval(ticking);
    }
    assert.ok(turns > 0, 'the event loop was blocked while the items were stored');
    await store.commitBatch(batch('big', 20_000));
    assert.equal(await store.findItemIndex('big', 'c-19999'), 19_999);
    // Any other fault keeps its message and SQLite code (here: the staged batch's items exist already).
    await assert.rejects(appendItems(store, 'big', 0, items(1)), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SQLITE_CONSTRAINT_PRIMARYKEY');
      return true;
    });
    // Closing fails what is still in flight instead of leaving it hanging; later appends are refused.
    const inFlight = assert.rejects(appendItems(store, 'c', 0, items(500)), /closed/);
    await store.close(); // resolves once the thread has exited
    stores.splice(0);
    await inFlight;
    await assert.rejects(appendItems(store, 'c', 500, items(1)), /closed/);
  },
);

test('single outcomes given at once go to the store thread together, answered and stored as if written one by one', async () => {
  const failure = (index: number, attempts: number) => ({
    index,
    status: 'failed' as const,
    attempts,
    error: { type: 'Error', message: `attempt ${attempts}` },
    startedAt: 't0',
    finishedAt: 't1',
  });
  // Distinct items out of order, then an item given twice (its first success stands), a failure and the success
  // that replaces it, and a success then a failure that must not replace it: all in one turn of the event loop.
  const outcomes = [
    ...Array.from({ length: 300 }, (_, i) => success((i * 7) % 300)),
    success(300),
    success(300, 'second'),
    failure(301, 1),
    { ...success(301), attempts: 2 },
    success(302),
    failure(302, 2),
  ];
  const gathered = openStore(newFile(), { outcomesOnThread: true });
  const oneByOne = openStore(newFile());
  for (const store of [gathered, oneByOne]) await store.createBatch(batch('b', 303), items(303));

  const answers = await Promise.all(outcomes.map((o) => gathered.putResult('b', o)));
  const expected: boolean[] = [];
  for (const o of outcomes) expected.push(await oneByOne.putResult('b', o));
  assert.deepEqual(answers, expected);
  assert.deepEqual(expected.slice(300), [true, false, true, true, true, false], 'the one-by-one answers themselves');

  const state = async (store: SqliteItemStore) => ({
    results: (await store.listResults('b', { limit: 1000 })).results,
    counts: await store.countResults('b'),
    events: (await store.listEvents('b', 0, 1000))
      .map((e) => (e.kind === 'item' ? `${e.index} ${e.status} ${e.attempts}` : e.kind))
      .sort(),
  });
  const stored = await state(gathered);
  assert.deepEqual(stored, await state(oneByOne));
  assert.deepEqual(stored.counts, { succeeded: 303, failed: 0 });
  assert.equal(stored.results.find((r) => r.index === 300)?.result?.label, 'x', "the item's first success stands");
});

test('single outcomes waiting for the store thread fail at once when the store closes', async () => {
  const { file } = open();
  const store = openStore(file, { outcomesOnThread: true });
  await store.createBatch(batch('b', 2), items(2));
  const failed = [store.putResult('b', success(0)), store.putResult('b', success(1))].map((w) =>
    assert.rejects(w, /item store closed before its write finished/),
  );
  await store.close();
  stores.splice(0);
  await Promise.all(failed);
});

test('rows cross to the store thread packed, or row by row when an id or inputs hold a newline: stored the same', async () => {
  const { store } = open();
  const rows: [string, string][] = [
    ['a', '{"input":[1,2]}'],
    ['', '{"input": [3.0, 4]}'],
    ['c', '{"input":[5,6]}'],
  ];
  await store.appendRows('packed', 0, rows);
  await store.appendRows('packed', 3, []);
  await store.commitBatch(batch('packed', 3));
  await store.appendRows('newline', 0, [...rows.slice(0, 2), ['c\nd', '{"input":\n[5,6]}']]);
  await store.commitBatch(batch('newline', 3));
  const read = async (id: string) => (await store.getItems(id, 0, 10)).map((i) => [i.id, i.inputs]);
  assert.deepEqual(await read('packed'), [
    ['a', { input: [1, 2] }],
    ['1', { input: [3, 4] }],
    ['c', { input: [5, 6] }],
  ]);
  assert.deepEqual(await read('newline'), [
    ['a', { input: [1, 2] }],
    ['1', { input: [3, 4] }],
    ['c\nd', { input: [5, 6] }],
  ]);
});

test(
  'outcomesOnThread: a run of outcomes is written on the store thread while the caller turns; a lock held past the busy timeout is StoreUnavailableError',
  { timeout: 20_000 },
  async () => {
    const file = newFile();
    const store = openStore(file, { outcomesOnThread: true, busyTimeoutMs: 200 });
    await store.createBatch(batch('b', 20_000), items(20_000));
    let turns = 0;
    const ticking = setInterval(() => turns++, 1);
    let written: boolean[];
    try {
      written = await store.putResults(
        'b',
        Array.from({ length: 20_000 }, (_, i) => success(19_999 - i)), // given out of order, answered in that order
      );
    } finally {
      clearInterval(ticking);
    }
    assert.ok(turns > 0, 'the event loop was blocked while the outcomes were written');
    assert.equal(written.length, 20_000);
    assert.ok(written.every(Boolean));
    assert.deepEqual(await store.countResults('b'), { succeeded: 20_000, failed: 0 });
    // Written already: a second write of the same successes writes none, and says so per outcome.
    assert.deepEqual(await store.putResults('b', [success(5), success(6)]), [false, false]);
    // Another process holds the write lock past the thread's busy timeout: the write fails as the store being locked.
    const other = new Database(file);
    try {
      other.exec('BEGIN IMMEDIATE');
      await assert.rejects(
        store.putResults('b', [success(0), { ...success(1), index: 20_001 }]),
        (err: unknown) => err instanceof StoreUnavailableError && err.fault === StoreFault.locked,
      );
      other.exec('ROLLBACK');
    } finally {
      other.close();
    }
    // Closing fails a write still in flight instead of leaving it hanging.
    await store.createBatch(batch('c', 5_000), items(5_000));
    const inFlight = assert.rejects(
      store.putResults(
        'c',
        Array.from({ length: 5_000 }, (_, i) => success(i)),
      ),
      /closed/,
    );
    await store.close();
    stores.splice(0);
    await inFlight;
  },
);

test('close() wakes a nextWrite waiter at once', async () => {
  const { store } = open();
  await store.createBatch(batch('b', 1), items(1));
  const started = Date.now();
  const waiting = store.nextWrite(30_000);
  await store.close();
  stores.splice(0);
  await waiting;
  assert.ok(Date.now() - started < 1000, `waited ${Date.now() - started} ms`);
});

/** This process's inotify watches on `file` (Linux: each watch is a line of its inotify descriptor's fdinfo). */
function inotifyWatchesOn(file: string): number {
  const ino = fs.statSync(file).ino;
  let watches = 0;
  for (const fd of fs.readdirSync('/proc/self/fdinfo')) {
    let info: string;
    try {
      info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed since the listing
    }
    for (const line of info.split('\n')) {
      const watched = /^inotify wd:\d+ ino:([0-9a-f]+) /.exec(line);
      if (watched && parseInt(watched[1]!, 16) === ino) watches++;
    }
  }
  return watches;
}

test('the write-ahead log is watched only while nextWrite has a waiter', async () => {
  const { store, file } = open();
  const writer = openStore(file);
  await store.createBatch(batch('b', 3), items(3));
  const wal = `${file}-wal`;
  assert.equal(inotifyWatchesOn(wal), 0, 'no watch before anyone waits');

  // A waiter woken by another connection's write: watched while it waits, not after.
  const woken = store.nextWrite(10_000);
  assert.equal(inotifyWatchesOn(wal), 1, 'one watch while a waiter waits');
  const started = performance.now();
  await writer.putResult('b', success(0));
  await woken;
  assert.ok(performance.now() - started < 5000, 'woken by the write, not by its timeout');
  // Woken from inside the watch's own event: libuv removes the watch when that event's dispatch returns.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(inotifyWatchesOn(wal), 0, 'no watch once the waiter was woken');

  // Two waiters share one watch; it goes with the last of them (one aborted, one timed out).
  const stop = new AbortController();
  const first = store.nextWrite(10_000, stop.signal);
  const second = store.nextWrite(50);
  assert.equal(inotifyWatchesOn(wal), 1, 'one watch for two waiters');
  stop.abort();
  await first;
  assert.equal(inotifyWatchesOn(wal), 1, 'still watched for the waiter left');
  await second;
  assert.equal(inotifyWatchesOn(wal), 0, 'no watch once the last waiter timed out');

  // Watching again on the next wait: a write still wakes it.
  const again = store.nextWrite(10_000);
  const restarted = performance.now();
  await writer.putResult('b', success(1));
  await again;
  assert.ok(performance.now() - restarted < 5000, 'a later wait is woken by a write too');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(inotifyWatchesOn(wal), 0);
});

test('a batch commits while another process writes the file, without SQLITE_BUSY_SNAPSHOT', async () => {
  const { store: api, file } = open();
  // Another writer, as the worker writing results: commits to the same file in a loop from its own thread, a
  // millisecond apart (back to back, it starved the append thread's first write lock past its 10 s busy timeout in a
  // loaded CI run: SQLite's busy handler sleeps and retries, and never found the lock free).
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
     for (let n = 0; Atomics.load(workerData.stop, 0) === 0; n++) {
       insert.run(n);
       Atomics.wait(workerData.stop, 0, 0, 1);
     }
     db.close();`,
    { eval: true, workerData: { file, stop } },
  );
  const exited = new Promise((r) => writer.once('exit', r));
  try {
    await new Promise((r) => writer.once('message', r));
    // Staged like an NDJSON submission: items appended in chunks, then the batch committed (a count, then an insert);
    // results written from this thread meanwhile (deferred transactions that read first failed here).
    for (let b = 0; b < 10; b++) {
      const staged = batch(`s-${b}`, 20_000);
      const appends = [];
      for (let from = 0; from < staged.total; from += 500) appends.push(appendItems(api, staged.id, from, items(500)));
      await Promise.all(appends);
      await api.commitBatch(staged);
      assert.equal((await api.getBatch(staged.id))?.total, 20_000);
      assert.equal(await api.putResult(staged.id, success(b)), true);
      assert.equal(await api.endBatch(staged.id, ended(staged.id, 'completed')), true);
    }
  } finally {
    Atomics.store(stop, 0, 1);
    await exited;
  }
});

test('opening a file at this schema reads it only: it does not wait for a write lock another connection holds', async () => {
  // The durability test freezes a worker (SIGSTOP) and opens the store meanwhile: a worker frozen inside a write
  // transaction holds the file's write lock, and an open that took it waited SQLite's 10 s busy timeout, then failed.
  const { store: first, file } = open();
  await first.createBatch(storedBatch('b', 2), storedItems(2));
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const writer = new Worker(
    `const Database = require('better-sqlite3');
     const { parentPort, workerData } = require('node:worker_threads');
     const db = new Database(workerData.file);
     db.exec('BEGIN IMMEDIATE');
     db.exec("DELETE FROM store_probe");
     parentPort.postMessage('holding the write lock');
     Atomics.wait(workerData.stop, 0, 0, 20000);
     db.exec('ROLLBACK');
     db.close();`,
    { eval: true, workerData: { file, stop } },
  );
  const exited = new Promise((r) => writer.once('exit', r));
  try {
    await new Promise((r) => writer.once('message', r));
    const t0 = performance.now();
    const second = openStore(file);
    assert.deepEqual(await second.countResults('b'), { succeeded: 0, failed: 0 });
    assert.equal((await second.getItems('b', 0, 2)).length, 2);
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `opened and read in ${Math.round(ms)} ms while another connection held the write lock`);
  } finally {
    Atomics.store(stop, 0, 1);
    Atomics.notify(stop, 0);
    await exited;
  }
});

test('a store opened while another connection writes a new file (rollback mode) waits for it, then switches to WAL', async () => {
  // `batchline dev` starts the API and two workers at once on a new file. Switching it to WAL reads, then writes, and
  // SQLite refuses a reader's write lock at once, without its busy handler, while another connection writes: a worker
  // failed at start so (SQLITE_BUSY). Here another thread holds a write transaction on a new file for 300 ms.
  const file = newFile();
  const writer = new Worker(
    `const Database = require('better-sqlite3');
     const { parentPort, workerData } = require('node:worker_threads');
     const db = new Database(workerData.file);
     db.exec('CREATE TABLE IF NOT EXISTS other (n INTEGER)');
     db.exec('BEGIN IMMEDIATE');
     db.exec('INSERT INTO other (n) VALUES (1)');
     parentPort.postMessage('writing');
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
     db.exec('COMMIT');
     db.close();`,
    { eval: true, workerData: { file } },
  );
  const exited = new Promise((r) => writer.once('exit', r));
  try {
    await new Promise((r) => writer.once('message', r));
    const store = openStore(file);
    await store.createBatch(storedBatch('after-the-write', 2), storedItems(2));
    assert.equal((await store.getItems('after-the-write', 0, 2)).length, 2);
    assert.equal(
      onFile(file, (db) => db.pragma('journal_mode', { simple: true })),
      'wal',
    );
  } finally {
    await exited;
  }
});
