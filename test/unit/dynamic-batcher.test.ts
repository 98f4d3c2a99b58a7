// The dynamic batcher: concurrent items coalesce into batches, results go back to the right item, one bad item
// never fails its neighbours. The first tests use the real runtime and the bundled digits model; the isolation
// tests use a fake batch runner (a model that fails on a poisoned item) to control exactly what fails.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { ItemResult } from '../../src/contracts/batch.js';
import { InvalidInputError, ModelLoadError, NotFoundError } from '../../src/errors.js';
import { DynamicBatcher, type BatchRunner } from '../../src/runtime/dynamic-batcher.js';
import { InferenceRuntime } from '../../src/runtime/inference.js';
import type { ItemTensor } from '../../src/runtime/input-validation.js';
import { ModelConfig } from '../../src/runtime/model-config.js';
import { ModelRepository, type ResolvedModel } from '../../src/runtime/model-repository.js';
import { heldout } from '../helpers/data.js';
import { ROOT } from '../helpers/temporal.js';

const rows = heldout('digits');

describe('with the real runtime (digits)', () => {
  const sizes: number[] = [];
  const runtime = new InferenceRuntime(new ModelRepository(path.join(ROOT, 'models')), {
    threads: 1,
    onBatch: (_model, size) => sizes.push(size),
  });
  after(() => runtime.close());

  test('64 concurrent items coalesce into batches larger than one, each item getting its own result', async () => {
    sizes.length = 0;
    const picked = rows.slice(0, 64);
    const results = await Promise.all(picked.map((r) => runtime.infer('digits', undefined, r.inputs)));
    results.forEach((res, i) => assert.equal(res.label, picked[i]!.expected.labelName, `item ${i}`));
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      64,
      'every item ran exactly once',
    );
    assert.ok(Math.max(...sizes) > 1, `observed batch sizes ${JSON.stringify(sizes)}`);
    assert.ok(sizes.length < 64, 'fewer runs than items');
  });

  test('no batch exceeds maxBatchSize (128) under 400 concurrent items', async () => {
    sizes.length = 0;
    const picked = Array.from({ length: 400 }, (_, i) => rows[i % rows.length]!);
    const results = await Promise.all(picked.map((r) => runtime.infer('digits', undefined, r.inputs)));
    results.forEach((res, i) => assert.equal(res.label, picked[i]!.expected.labelName));
    assert.ok(Math.max(...sizes) <= 128, JSON.stringify(sizes));
    assert.ok(Math.max(...sizes) > 1);
  });

  test('an item with bad inputs is refused before it joins a batch; its concurrent neighbours succeed', async () => {
    const good = rows.slice(0, 20);
    const outcomes = await Promise.allSettled([
      ...good.slice(0, 10).map((r) => runtime.infer('digits', undefined, r.inputs)),
      runtime.infer('digits', undefined, { input: [1, 2, 3] }),
      ...good.slice(10).map((r) => runtime.infer('digits', undefined, r.inputs)),
    ]);
    const bad = outcomes[10]!;
    assert.equal(bad.status, 'rejected');
    assert.ok((bad as PromiseRejectedResult).reason instanceof InvalidInputError);
    const others = outcomes.filter((_, i) => i !== 10);
    others.forEach((o, i) => {
      assert.equal(o.status, 'fulfilled');
      assert.equal((o as PromiseFulfilledResult<ItemResult>).value.label, good[i]!.expected.labelName);
    });
  });

  test('a lone item is not held longer than its queue delay', async () => {
    const t0 = performance.now();
    const res = await runtime.infer('digits', undefined, rows[0]!.inputs);
    assert.equal(res.label, rows[0]!.expected.labelName);
    assert.ok(performance.now() - t0 < 1000, 'resolved promptly');
  });

  /** Runs inferMany and collects what it hands over: each run's positions and outcomes. */
  async function inferMany(
    rt: InferenceRuntime,
    inputs: Record<string, unknown>[],
    onRun: (positions: number[]) => Promise<void> = async () => {},
  ) {
    const runs: { positions: number[]; outcomes: (ItemResult | Error)[] }[] = [];
    await rt.inferMany('digits', undefined, inputs as never, async (positions, outcomes) => {
      runs.push({ positions, outcomes });
      await onRun(positions);
    });
    return runs;
  }

  test('inferMany: a chunk goes as runs of at most maxBatchSize; every item gets one outcome; a bad item fails alone', async () => {
    sizes.length = 0;
    const picked = Array.from({ length: 300 }, (_, i) => rows[i % rows.length]!.inputs as Record<string, unknown>);
    picked[7] = { input: [1, 2, 3] };
    const runs = await inferMany(runtime, picked);
    const positions = runs.flatMap((r) => r.positions).sort((a, b) => a - b);
    assert.deepEqual(
      positions,
      Array.from({ length: 300 }, (_, i) => i),
      'every position exactly once',
    );
    assert.deepEqual(sizes, [128, 128, 43], 'the valid items as whole runs of at most 128');
    for (const run of runs) {
      run.positions.forEach((p, k) => {
        const outcome = run.outcomes[k]!;
        if (p === 7) assert.ok(outcome instanceof InvalidInputError, String(outcome));
        else assert.equal((outcome as ItemResult).label, rows[p % rows.length]!.expected.labelName, `item ${p}`);
      });
    }
  });

  test('inferMany: with dynamic batching off every item runs alone', async () => {
    const alone: number[] = [];
    const rt = new InferenceRuntime(new ModelRepository(path.join(ROOT, 'models')), {
      threads: 1,
      dynamicBatching: false,
      onBatch: (_model, size) => alone.push(size),
    });
    try {
      const runs = await inferMany(
        rt,
        rows.slice(0, 5).map((r) => r.inputs),
      );
      assert.equal(runs.length, 5);
      assert.deepEqual(alone, [1, 1, 1, 1, 1]);
    } finally {
      await rt.close();
    }
  });

  test('inferMany: when one run cannot be handed over, it rejects with that error once every run has settled', async () => {
    const picked = Array.from({ length: 300 }, (_, i) => rows[i % rows.length]!.inputs);
    const settled: number[][] = [];
    let first = true;
    await assert.rejects(
      inferMany(runtime, picked, async (positions) => {
        if (first) {
          first = false;
          throw new Error('the store is down');
        }
        settled.push(positions);
      }),
      /the store is down/,
    );
    assert.equal(settled.flat().length + 128, 300, 'the other runs were all handed over before it rejected');
  });

  test('inferMany: an unknown model fails every item with NotFound, handed over at once', async () => {
    const runs: (ItemResult | Error)[][] = [];
    await runtime.inferMany('no-such-model', undefined, [{ input: [] }, { input: [] }], async (_p, outcomes) => {
      runs.push(outcomes);
    });
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.length, 2);
    runs[0]!.forEach((o) => assert.ok(o instanceof NotFoundError && /no-such-model/.test(o.message), String(o)));
  });
});

describe('error isolation with a fake model', () => {
  const model: ResolvedModel = {
    name: 'fake',
    version: 1,
    file: '/fake/1/model.onnx',
    versions: [1],
    config: ModelConfig.parse({
      name: 'fake',
      maxBatchSize: 16,
      dynamicBatching: { maxQueueDelayMs: 5 },
      inputs: [{ name: 'x', dtype: 'float32', shape: [-1] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1] }],
    }),
  };
  const item = (v: number, n = 1): Record<string, ItemTensor> => ({ x: { data: new Array(n).fill(v), dims: [n] } });
  /** The fake model with other dynamic batching settings. */
  const batching = (dynamicBatching: object): ResolvedModel => ({
    ...model,
    config: ModelConfig.parse({ ...model.config, dynamicBatching }),
  });
  /** A fake text model: its items are token ids, padded per run. */
  const textModel = (maxBatchSize: number, maxQueueDelayMs: number): ResolvedModel => ({
    ...model,
    config: ModelConfig.parse({
      name: 'fake-text',
      maxBatchSize,
      dynamicBatching: { maxQueueDelayMs },
      inputs: [{ name: 'input_ids', dtype: 'int64', shape: [-1] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1] }],
      tokenizer: { file: 'tokenizer.json', maxLength: 256 },
    }),
  });
  const POISON = 666;

  /** A model that fails any batch holding a poisoned item, and doubles every value otherwise. */
  function poisonRunner(log: number[]): BatchRunner {
    return async (_m, items) => {
      log.push(items.length);
      if (items.some((t) => t.x!.data[0] === POISON)) throw new Error('kernel fault on a poisoned item');
      return items.map((t) => ({
        model: 'fake',
        version: 1,
        outputs: { y: (t.x!.data as number[]).map((v) => v * 2) },
      }));
    };
  }

  test('a batch that fails is retried item by item: only the poisoned item fails', async () => {
    const runs: number[] = [];
    const batcher = new DynamicBatcher(poisonRunner(runs));
    const values = [1, 2, 3, POISON, 5, 6, 7, 8];
    const outcomes = await Promise.allSettled(values.map((v) => batcher.submit(model, item(v))));
    assert.ok(runs[0]! > 1, `the first run was a real batch: ${JSON.stringify(runs)}`);
    outcomes.forEach((o, i) => {
      if (values[i] === POISON) {
        assert.equal(o.status, 'rejected');
        assert.match(String((o as PromiseRejectedResult).reason), /poisoned/);
      } else {
        assert.equal(o.status, 'fulfilled', `item ${i}`);
        assert.deepEqual((o as PromiseFulfilledResult<ItemResult>).value.outputs.y, [values[i]! * 2]);
      }
    });
  });

  test('a model that cannot load fails every item of the batch at once, without per-item retries', async () => {
    const runs: number[] = [];
    const batcher = new DynamicBatcher(async (_m, items) => {
      runs.push(items.length);
      throw new ModelLoadError('/fake/1/model.onnx', 'protobuf parsing failed');
    });
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map((v) => batcher.submit(model, item(v))));
    assert.ok(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof ModelLoadError));
    assert.deepEqual(runs, [4]);
  });

  test('items of different shapes never share a run', async () => {
    const seen: number[][] = [];
    const batcher = new DynamicBatcher(async (_m, items) => {
      seen.push(items.map((t) => t.x!.dims[0]!));
      return items.map(() => ({ model: 'fake', version: 1, outputs: {} }));
    });
    await Promise.all([1, 2, 1, 2, 3, 1].map((n) => batcher.submit(model, item(0, n))));
    for (const run of seen) assert.equal(new Set(run).size, 1, `mixed shapes in one run: ${JSON.stringify(run)}`);
    assert.equal(seen.flat().length, 6);
  });

  test('text items share a run only within 8 tokens of length (a run pads each item by fewer than 8)', async () => {
    const text = textModel(16, 5);
    const lengths = [3, 8, 9, 16, 17, 33, 40, 5, 12, 24, 25];
    const runs: number[][] = [];
    const batcher = new DynamicBatcher(async (_m, items) => {
      runs.push(items.map((t) => t.input_ids!.data.length));
      return items.map(() => ({ model: 'fake-text', version: 1, outputs: {} }));
    });
    await Promise.all(
      lengths.map((n) => batcher.submit(text, { input_ids: { data: new Array(n).fill(1), dims: [n] } })),
    );
    const sorted = runs.map((r) => [...r].sort((a, b) => a - b)).sort((a, b) => a[0]! - b[0]!);
    assert.deepEqual(sorted, [[3, 5, 8], [9, 12, 16], [17, 24], [25], [33, 40]]);
  });

  /**
   * A runner whose runs finish only when the test says. `started` holds each run's first value and `sizes` its item
   * count, in dispatch order; `untilStarted(n)` resolves when the runner is called for the n-th time, so a test waits
   * on the batcher's own dispatch, never on the clock (it fails after a deadline if that run never starts).
   */
  function heldRunner() {
    const started: number[] = [];
    const sizes: number[] = [];
    const finish: (() => void)[] = [];
    const waiting: { n: number; resolve: () => void }[] = [];
    const runner: BatchRunner = (_m, items) => {
      started.push(items[0]!.x!.data[0] as number);
      sizes.push(items.length);
      for (let k = waiting.length - 1; k >= 0; k--)
        if (started.length >= waiting[k]!.n) waiting.splice(k, 1)[0]!.resolve();
      return new Promise((resolve) =>
        finish.push(() => resolve(items.map(() => ({ model: 'fake', version: 1, outputs: {} })))),
      );
    };
    const untilStarted = (n: number, deadlineMs = 2000): Promise<void> => {
      if (started.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`run ${n} never started; runs so far: ${JSON.stringify(started)}`)),
          deadlineMs,
        );
        waiting.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    };
    return { started, sizes, runner, untilStarted, finishNext: () => finish.shift()!() };
  }

  test('an interactive item runs at once beside a full set of batch runs, without waiting a queue delay', async () => {
    const { started, runner, untilStarted, finishNext } = heldRunner();
    const batcher = new DynamicBatcher(runner, { maxInFlight: 1 });
    const batchItems = [batcher.submit(model, item(1)), batcher.submit(model, item(2))];
    await untilStarted(1); // the batch items' queue delay (5 ms) passed: one run of both holds the only slot
    assert.deepEqual(started, [1]);
    const online = batcher.submit(model, item(100), 'interactive');
    assert.deepEqual(started, [1, 100], 'dispatched in the same tick, in the slot kept for interactive items');
    finishNext();
    finishNext();
    await online;
    await Promise.all(batchItems);
  });

  test('when every slot is taken, a freed slot goes to a waiting interactive item before older batch items', async () => {
    // No queue delay: a batch item is ready as soon as it arrives, so only the lack of a free slot holds it back.
    const eager = batching({ maxQueueDelayMs: 0 });
    const { started, sizes, runner, untilStarted, finishNext } = heldRunner();
    const batcher = new DynamicBatcher(runner, { maxInFlight: 1 });
    const all = [batcher.submit(eager, item(1))]; // takes the only batch slot
    all.push(batcher.submit(eager, item(100), 'interactive')); // takes the interactive slot
    all.push(batcher.submit(eager, item(2)), batcher.submit(eager, item(3))); // ready, but every slot is taken
    all.push(batcher.submit(eager, item(101), 'interactive')); // arrives last
    assert.deepEqual(started, [1, 100]);
    finishNext(); // frees a slot
    await untilStarted(3);
    assert.deepEqual(started, [1, 100, 101], 'the interactive item went first');
    finishNext();
    finishNext(); // both interactive runs end: the batch slot is free again
    await untilStarted(4);
    assert.deepEqual(started, [1, 100, 101, 2], 'then the batch items');
    assert.equal(sizes[3], 2, 'together, in one run');
    finishNext();
    await Promise.all(all);
  });

  test("a run takes the largest preferred batch size the waiting items fill, else all of them (Triton's rule)", async () => {
    const preferring = batching({ maxQueueDelayMs: 0, preferredBatchSizes: [4, 8] });
    const runs: number[] = [];
    const { runner, untilStarted, finishNext } = heldRunner();
    const batcher = new DynamicBatcher(async (m, items) => {
      runs.push(items.length);
      return runner(m, items);
    });
    const all = [batcher.submit(preferring, item(0))]; // runs alone: the only slot is free
    for (let i = 1; i <= 13; i++) all.push(batcher.submit(preferring, item(i)));
    for (let n = 2; n <= 4; n++) {
      finishNext(); // the slot frees: the next run starts from what is waiting
      await untilStarted(n);
    }
    finishNext();
    await Promise.all(all);
    assert.deepEqual(
      runs,
      [1, 8, 4, 1],
      '13 waiting: 8, then 4 (the largest preferred size 5 fill), then the last one',
    );
  });

  test('with a queue delay, a queue that fills a preferred size runs at once instead of waiting out the delay', async () => {
    const slow = batching({ maxQueueDelayMs: 1000, preferredBatchSizes: [3] });
    const runs: number[] = [];
    const batcher = new DynamicBatcher(poisonRunner(runs));
    const t0 = performance.now();
    await Promise.all([1, 2, 3].map((v) => batcher.submit(slow, item(v))));
    assert.deepEqual(runs, [3]);
    assert.ok(performance.now() - t0 < 500, `ran after ${performance.now() - t0} ms, not after the 1 s delay`);
  });

  test('a deep text queue runs the oldest item with the items nearest its length, so runs need no padding', async () => {
    const text = textModel(4, 0);
    const runs: number[][] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const batcher = new DynamicBatcher(async (_m, items) => {
      runs.push(items.map((t) => t.input_ids!.data.length));
      if (runs.length === 1) await gate; // the first run holds the slot while the rest queues up
      return items.map(() => ({ model: 'fake-text', version: 1, outputs: {} }));
    });
    const ids = (n: number) => ({ input_ids: { data: new Array(n).fill(1), dims: [n] } });
    // One bucket (lengths 9-16), arrival order mixing lengths: 12 arrives first, then a spread.
    const lengths = [10, 12, 9, 16, 12, 11, 12, 10, 16, 12, 9, 10, 16, 11];
    const all = lengths.map((n) => batcher.submit(text, ids(n)));
    assert.deepEqual(runs, [[10]], 'the first item took the only slot at once; the rest are queued behind it');
    release();
    await Promise.all(all);
    assert.deepEqual(runs, [
      [10], // ran alone: the slot was free
      [12, 12, 12, 12], // the oldest waiting item (12) with the other three of its length
      [9, 10, 9, 10], // then the oldest (9) and the narrowest range around it that fills a run
      [16, 11, 16, 16], // the oldest (16) must go; only three items share its length, so the range widens to 11
      [11],
    ]);
  });

  test("a finished run's slot is refilled before its items' callers resume", async () => {
    const eager = batching({ maxQueueDelayMs: 0 });
    const { started, runner, finishNext } = heldRunner();
    const batcher = new DynamicBatcher(runner, { maxInFlight: 1 });
    const first = batcher.submit(eager, item(1)); // runs at once
    const second = batcher.submit(eager, item(2)); // waits for the slot
    let startedWhenFirstResumed = -1;
    const resumed = first.then(() => (startedWhenFirstResumed = started.length));
    assert.deepEqual(started, [1]);
    finishNext();
    await resumed;
    assert.equal(startedWhenFirstResumed, 2, 'the next run was already dispatched when the first item resumed');
    finishNext();
    await second;
  });

  test('batches are cut at maxBatchSize and the rest runs after', async () => {
    const runs: number[] = [];
    const batcher = new DynamicBatcher(poisonRunner(runs));
    await Promise.all(Array.from({ length: 40 }, (_, i) => batcher.submit(model, item(i))));
    assert.ok(Math.max(...runs) <= 16, JSON.stringify(runs));
    assert.equal(
      runs.reduce((a, b) => a + b, 0),
      40,
    );
  });
});
