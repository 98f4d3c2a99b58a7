// Reading an NDJSON submission against a store that writes in the background: issues stay in line order, the
// store never holds more than a couple of chunks, and no append is left running when the reader returns or throws.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { ItemIssues } from '../../src/api/batch-submission.js';
import { readNdjsonItems } from '../../src/api/ndjson-items.js';
import type { BatchItem } from '../../src/contracts/batch.js';
import { PayloadTooLargeError } from '../../src/errors.js';
import type { ResolvedModel } from '../../src/runtime/model-repository.js';
import { ModelConfig } from '../../src/runtime/model-config.js';
import { DuplicateItemIdError } from '../../src/stores/item-store.js';

const model: ResolvedModel = {
  name: 'pair',
  version: 1,
  file: '/nowhere/model.onnx',
  versions: [1],
  config: ModelConfig.parse({
    name: 'pair',
    inputs: [{ name: 'input', dtype: 'float32', shape: [2] }],
    outputs: [{ name: 'out', dtype: 'float32', shape: [1] }],
  }),
};

const line = (i: number, id?: string) => JSON.stringify({ ...(id ? { id } : {}), inputs: { input: [i, i] } });
/** The body in small pieces, as a socket delivers it. */
const body = (lines: string[]) =>
  Readable.from(
    Buffer.from(lines.join('\n')).reduce<Buffer[]>(
      (parts, _b, i, all) => (i % 4096 === 0 ? [...parts, all.subarray(i, i + 4096)] : parts),
      [],
    ),
  );

/**
 * A store that takes `delayMs` per append, one at a time in the order made (as the append thread does), and refuses
 * the item ids in `duplicates` (by item index). Counts what is in flight.
 */
function slowStore(delayMs: number, duplicates = new Map<number, string>()) {
  const stored: number[] = [];
  let queue = Promise.resolve();
  const state = { inFlight: 0, maxInFlight: 0, stored };
  const append = (items: BatchItem[], from: number): Promise<void> => {
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    const done = queue.then(async () => {
      await sleep(delayMs);
      state.inFlight--;
      for (let i = 0; i < items.length; i++) {
        const id = duplicates.get(from + i);
        if (id !== undefined) throw new DuplicateItemIdError(id, from + i);
      }
      stored.push(...items.map((_, i) => from + i));
    });
    queue = done.catch(() => {});
    return done;
  };
  return { state, append };
}

test('a valid body is stored whole, with at most two appends in flight', async () => {
  const { state, append } = slowStore(50); // long enough that the reader always has the next chunk ready
  const issues = new ItemIssues();
  const lines = Array.from({ length: 2_600 }, (_, i) => line(i));
  const { total } = await readNdjsonItems(body(lines), { model, issues, maxBytes: 1e9, maxItems: 1e6, append });
  assert.equal(total, 2_600);
  assert.equal(issues.bad, 0);
  assert.equal(state.inFlight, 0, 'nothing is left running');
  assert.deepEqual(
    state.stored,
    Array.from({ length: 2_600 }, (_, i) => i),
  );
  assert.equal(state.maxInFlight, 2);
});

test('a duplicate id found by the store is reported by its line, before bad lines that follow it', async () => {
  // Item 10 (line 11) repeats an id; the store finds it while the reader parses on, to line 700, which is bad.
  const { state, append } = slowStore(50, new Map([[10, 'dup']]));
  const issues = new ItemIssues();
  const lines = Array.from({ length: 1_500 }, (_, i) => (i === 699 ? '{"inputs": {"input": [1]}}' : line(i)));
  await readNdjsonItems(body(lines), { model, issues, maxBytes: 1e9, maxItems: 1e6, append });
  assert.equal(state.inFlight, 0);
  assert.deepEqual(
    issues.details.map((d) => d.path.slice(0, 3).join('.')),
    ['line.11.id', 'line.700.inputs'],
  );
  assert.match(issues.details[0]!.message, /duplicate item id 'dup'/);
  assert.equal(issues.bad, 2);
});

test('only the first duplicate is reported, though later appends were already under way', async () => {
  const { append } = slowStore(
    50,
    new Map([
      [3, 'a'],
      [700, 'b'],
    ]),
  );
  const issues = new ItemIssues();
  const lines = Array.from({ length: 1_200 }, (_, i) => line(i));
  await readNdjsonItems(body(lines), { model, issues, maxBytes: 1e9, maxItems: 1e6, append });
  assert.deepEqual(
    issues.details.map((d) => d.path.join('.')),
    ['line.4.id'],
  );
});

test('a body over the item limit throws only after the appends under way have finished', async () => {
  const { state, append } = slowStore(30);
  const issues = new ItemIssues();
  const lines = Array.from({ length: 1_200 }, (_, i) => line(i));
  await assert.rejects(
    readNdjsonItems(body(lines), { model, issues, maxBytes: 1e9, maxItems: 1_100, append }),
    PayloadTooLargeError,
  );
  assert.equal(state.inFlight, 0, 'the caller may delete the staged batch at once');
});

test('a store fault other than a duplicate id fails the read, with nothing left running', async () => {
  let calls = 0;
  let inFlight = 0;
  const append = async () => {
    inFlight++;
    await sleep(10);
    inFlight--;
    if (++calls === 2) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
  };
  const issues = new ItemIssues();
  const lines = Array.from({ length: 3_000 }, (_, i) => line(i));
  await assert.rejects(
    readNdjsonItems(body(lines), { model, issues, maxBytes: 1e9, maxItems: 1e6, append }),
    /disk I\/O error/,
  );
  assert.equal(inFlight, 0);
  assert.ok(calls <= 4, `stopped soon after the fault (${calls} appends)`);
});
