// What a shard carries across continue-as-new (workflows/item-table.ts), at the largest shard a batch may ask for
// (MAX_SHARD_SIZE): the worst case stays under half of the payload size Temporal refuses, and the state comes back
// whole. The shard size option refuses anything larger, by field.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchOptions } from '../../src/contracts/batch.js';
import { MAX_SHARD_SIZE } from '../../src/contracts/limits.js';
import { ItemTable, MAX_CARRIED_ERRORS } from '../../workflows/item-table.js';

/** Half of the largest payload Temporal takes by default (limit.blobSize.error: 2 MB). */
const HALF_TEMPORAL_BLOB_LIMIT_BYTES = (2 * 1024 * 1024) / 2;

/**
 * A shard's worst carried state: every other item failed after 5 attempts with a long message, each item started a
 * second after the one before (concurrency 1, items of a second), so no two neighbours share a status, an attempt
 * count or a time, and the shard started 30 days into its batch, so every time is a large number.
 */
function worstTable(size: number): ItemTable {
  const batchStartedMs = Date.UTC(2026, 0, 1);
  const shardStartedMs = batchStartedMs + 30 * 86_400_000;
  const lo = 3 * size; // the fourth shard
  const table = new ItemTable(lo, lo + size, batchStartedMs);
  for (let i = lo; i < lo + size; i++) {
    const startedMs = shardStartedMs + (i - lo) * 1000;
    table.start(i, 1, startedMs);
    if (i % 2) table.fail(i, 5, { type: 'ModelError', message: `item ${i}: ${'x'.repeat(400)}` }, startedMs + 999);
    else table.succeed(i, 1, startedMs + 999);
  }
  return table;
}

describe('the state a shard carries across continue-as-new', () => {
  test(`at the largest shard (${MAX_SHARD_SIZE} items), the worst case stays under half of Temporal's payload limit`, () => {
    const table = worstTable(MAX_SHARD_SIZE);
    const bytes = Buffer.byteLength(JSON.stringify(table.carry()));
    assert.ok(bytes < HALF_TEMPORAL_BLOB_LIMIT_BYTES, `${bytes} bytes carried`);
    // Twice the shard would not fit: the limit is what keeps it there.
    const twice = Buffer.byteLength(JSON.stringify(worstTable(2 * MAX_SHARD_SIZE).carry()));
    assert.ok(twice > HALF_TEMPORAL_BLOB_LIMIT_BYTES, `${twice} bytes carried by a shard of ${2 * MAX_SHARD_SIZE}`);
  });

  test('the carried state comes back whole: every item, its status, attempts and times, the first errors (cut)', () => {
    const table = worstTable(MAX_SHARD_SIZE);
    const carried = JSON.parse(JSON.stringify(table.carry())) as ReturnType<ItemTable['carry']>;
    const back = new ItemTable(table.lo, table.hi, Date.UTC(2026, 0, 1), {
      kind: 'items',
      cursor: table.hi,
      retryQueue: [],
      paused: false,
      concurrency: 1,
      ...carried,
    });
    assert.deepEqual(back.counts, table.counts);
    assert.equal(back.counts.failed, MAX_SHARD_SIZE / 2);
    // Errors of the first MAX_CARRIED_ERRORS failed items travel (cut to 120 characters); the store has every one.
    const lastCarried = table.lo + 2 * MAX_CARRIED_ERRORS - 1;
    for (const i of [table.lo, table.lo + 1, lastCarried, lastCarried + 2, table.lo + 4_321, table.hi - 1]) {
      const was = table.view(i);
      const is = back.view(i);
      assert.deepEqual({ ...is, error: undefined }, { ...was, error: undefined }, `item ${i}`);
      if (i % 2 === 0) assert.equal(is.error, undefined);
      else if (i <= lastCarried)
        assert.deepEqual(is.error, { type: 'ModelError', message: was.error!.message.slice(0, 120) });
      else assert.equal(is.error, undefined, `item ${i}: past the carried errors`);
    }
  });
});

describe('the shard size option', () => {
  test(`takes 1 to ${MAX_SHARD_SIZE} items and refuses more, at its field`, () => {
    assert.equal(BatchOptions.parse({ shardSize: MAX_SHARD_SIZE }).shardSize, MAX_SHARD_SIZE);
    const over = BatchOptions.safeParse({ shardSize: MAX_SHARD_SIZE + 1 });
    assert.equal(over.success, false);
    assert.deepEqual(
      over.error?.issues.map((i) => i.path),
      [['shardSize']],
    );
    assert.equal(BatchOptions.safeParse({ shardSize: 0 }).success, false);
  });
});
