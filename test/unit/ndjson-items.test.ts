// Reading an NDJSON submission against a store that writes in the background: issues stay in line order, the store
// never holds more than a couple of chunks, and no append is left running when the reader returns or throws.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ItemIssues } from '../../src/api/batch-submission.js';
import { MAX_APPENDS_IN_FLIGHT, readNdjsonItems, type NdjsonItemsOptions } from '../../src/api/ndjson-items.js';
import { NdjsonLines } from '../../src/api/ndjson-lines.js';
import { PayloadTooLargeError } from '../../src/errors.js';
import type { ResolvedModel } from '../../src/runtime/model-repository.js';
import { ModelConfig } from '../../src/runtime/model-config.js';
import { DuplicateItemIdError, type ItemRow } from '../../src/stores/item-store.js';

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
 * A store that writes one append at a time, in the order made (as the append thread does), and refuses the item ids
 * in `duplicates` (by item index) and fails append number `faultAt` (from 1) with an I/O error. It finishes its oldest
 * append only when the reader can go no further without it: on the event loop's next turn (setImmediate), after every
 * promise and stream callback the reader could resume on has run (the body is in memory). So the reader always runs
 * as far ahead of the store as its own limits allow, on any machine, and the tests see exactly those limits.
 */
function idleStore({ duplicates = new Map<number, string>(), faultAt = 0 } = {}) {
  const stored: number[] = [];
  const state = { appends: 0, inFlight: 0, maxInFlight: 0, appendsAtFault: 0, stored };
  const unfinished: (() => void)[] = [];
  let turn: NodeJS.Immediate | undefined;
  const finishOldestWhenIdle = () => {
    turn ??= setImmediate(() => {
      turn = undefined;
      unfinished.shift()?.();
      if (unfinished.length > 0) finishOldestWhenIdle();
    });
  };
  const append = (items: ItemRow[], from: number): Promise<void> => {
    const n = ++state.appends;
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    return new Promise<void>((resolve, reject) => {
      unfinished.push(() => {
        state.inFlight--;
        if (n === faultAt) {
          state.appendsAtFault = state.appends;
          return reject(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' }));
        }
        for (let i = 0; i < items.length; i++) {
          const id = duplicates.get(from + i);
          if (id !== undefined) return reject(new DuplicateItemIdError(id, from + i));
        }
        stored.push(...items.map((_, i) => from + i));
        resolve();
      });
      finishOldestWhenIdle();
    });
  };
  return { state, append };
}

/** Reads `lines` as a body into `append`: the reader's limits far away unless a test sets them. */
const read = (
  lines: string[],
  issues: ItemIssues,
  append: NdjsonItemsOptions['append'],
  options: Partial<NdjsonItemsOptions> = {},
) =>
  readNdjsonItems(body(lines), {
    model,
    issues,
    maxBytes: 1e9,
    maxItems: 1e6,
    append,
    appendEvery: 500,
    hashBody: false,
    ...options,
  });

test('a valid body is stored whole, with at most MAX_APPENDS_IN_FLIGHT appends in flight', async () => {
  const { state, append } = idleStore();
  const issues = new ItemIssues();
  const n = 500 * (MAX_APPENDS_IN_FLIGHT + 3) + 100;
  const lines = Array.from({ length: n }, (_, i) => line(i));
  const { total, bodyHash } = await read(lines, issues, append, { hashBody: true });
  assert.equal(total, n);
  assert.equal(bodyHash, createHash('sha256').update(lines.join('\n')).digest('hex'));
  assert.equal(issues.bad, 0);
  assert.equal(state.inFlight, 0, 'nothing is left running');
  assert.deepEqual(
    state.stored,
    Array.from({ length: n }, (_, i) => i),
  );
  assert.equal(state.maxInFlight, MAX_APPENDS_IN_FLIGHT, 'the reader ran ahead of the store, and no further');
});

test('a duplicate id found by the store is reported by its line, before bad lines that follow it', async () => {
  // Item 10 (line 11) repeats an id; the store finds it while the reader parses on, to line 700, which is bad.
  const { state, append } = idleStore({ duplicates: new Map([[10, 'dup']]) });
  const issues = new ItemIssues();
  const lines = Array.from({ length: 1_500 }, (_, i) => (i === 699 ? '{"inputs": {"input": [1]}}' : line(i)));
  await read(lines, issues, append);
  assert.equal(state.inFlight, 0);
  assert.deepEqual(
    issues.details.map((d) => d.path.slice(0, 3).join('.')),
    ['line.11.id', 'line.700.inputs'],
  );
  assert.match(issues.details[0]!.message, /duplicate item id 'dup'/);
  assert.equal(issues.bad, 2);
});

test('only the first duplicate is reported, though later appends were already under way', async () => {
  const { state, append } = idleStore({
    duplicates: new Map([
      [3, 'a'],
      [700, 'b'],
    ]),
  });
  const issues = new ItemIssues();
  const lines = Array.from({ length: 1_200 }, (_, i) => line(i));
  await read(lines, issues, append);
  assert.ok(state.appends >= 2, 'the append holding item 700 was under way when the first duplicate was found');
  assert.deepEqual(
    issues.details.map((d) => d.path.join('.')),
    ['line.4.id'],
  );
});

test('a body over the item limit throws only after the appends under way have finished', async () => {
  const { state, append } = idleStore();
  const issues = new ItemIssues();
  const lines = Array.from({ length: 1_200 }, (_, i) => line(i));
  await assert.rejects(read(lines, issues, append, { maxItems: 1_100 }), PayloadTooLargeError);
  assert.equal(state.inFlight, 0, 'the caller may delete the staged batch at once');
});

test('a store fault other than a duplicate id fails the read, with nothing left running', async () => {
  const { state, append } = idleStore({ faultAt: 2 });
  const issues = new ItemIssues();
  const lines = Array.from({ length: 3_000 }, (_, i) => line(i));
  await assert.rejects(read(lines, issues, append), /disk I\/O error/);
  assert.equal(state.inFlight, 0);
  assert.equal(state.appends, state.appendsAtFault, 'no append was made after the store reported the fault');
});

test('a line that is exactly {"inputs": ...} is stored as its own text; any other line is serialised from its values', () => {
  const lines = [
    '{"inputs":{"input":[1.0, 2e0]}}', // stored as it came: reads back as [1, 2]
    '{"inputs":{"input":[1,2]},"inputs":{"input":[3,4]}}', // a repeated key: the value JSON.parse kept
    '{"\\u0069nputs":{"input":[5,6]}}', // an escaped key
    ' {"inputs":{"input":[7,8]}}', // text around it
    '{"id":"x","inputs":{"input":[9,10]}}',
    '{"inputs":{"input":[11,12]},"id":"y"}',
  ];
  const source = new NdjsonLines({ model, maxItems: 100, groupSize: 100 });
  const [out] = [...source.write(Buffer.from(lines.join('\n'))), ...source.end()];
  assert.ok(out?.kind === 'rows');
  assert.deepEqual(out.rows, [
    ['', '{"input":[1.0, 2e0]}'],
    ['', '{"input":[3,4]}'],
    ['', '{"input":[5,6]}'],
    ['', '{"input":[7,8]}'],
    ['x', '{"input":[9,10]}'],
    ['y', '{"input":[11,12]}'],
  ]);
  assert.deepEqual(
    out.rows.map(([, inputs]) => JSON.parse(inputs)),
    [1, 3, 5, 7, 9, 11].map((v) => ({ input: [v, v + 1] })),
  );
});
