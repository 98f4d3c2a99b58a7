// Chunked mode (itemsPerActivity > 1): one activity per chunk, per-item semantics kept. On the real dev server,
// with the scripted fake model for failures and with the real digits model for correctness.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { BatchOptions, type ItemInputs } from '../../src/contracts/batch.js';
import { MAX_SHARD_SIZE } from '../../src/contracts/limits.js';
import { InvalidInputError } from '../../src/errors.js';
import { InferenceRuntime, type RunHandler } from '../../src/runtime/inference.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import { itemQuery } from '../../workflows/messages.js';
import type { batchWorkflow } from '../../workflows/batch-workflow.js';
import { heldout } from '../helpers/data.js';
import { Behaviour, FakeModel, item } from '../helpers/fake-model.js';
import { startWorkerStack, type WorkerStack } from '../helpers/stack.js';
import { quietTemporalLogs, ROOT, startTestTemporal, waitFor, type TestTemporal } from '../helpers/temporal.js';
import { GatedRuntime, HELD } from '../e2e/online-stack.js';
import { connectTemporal } from '../../src/client/connection.js';

describe('chunked mode', () => {
  let temporal: TestTemporal;
  let client: Client;
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    client = new Client({ connection: await connectTemporal(temporal.address) });
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await client?.connection.close();
    await temporal?.stop();
  });

  async function setup(runtime: Pick<InferenceRuntime, 'infer' | 'inferMany'>): Promise<WorkerStack> {
    const stack = await startWorkerStack(temporal.address, runtime);
    cleanups.push(() => stack.close());
    return stack;
  }

  async function activityCompletions(batchId: string): Promise<Record<string, number>> {
    const history = await client.workflow.getHandle(batchWorkflowId(batchId)).fetchHistory();
    const scheduled = new Map<string, string>();
    const counts: Record<string, number> = {};
    for (const e of history.events!) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) scheduled.set(String(e.eventId), s.activityType!.name!);
      const c = e.activityTaskCompletedEventAttributes;
      if (c) {
        const type = scheduled.get(String(c.scheduledEventId))!;
        counts[type] = (counts[type] ?? 0) + 1;
      }
    }
    return counts;
  }

  test('real digits rows in chunks of 25: every label equals scikit-learn’s, 4 activities for 100 items', async () => {
    const runtime = new InferenceRuntime(new ModelRepository(path.join(ROOT, 'models')));
    cleanups.push(() => runtime.close());
    const { store, batches } = await setup(runtime);
    const rows = heldout('digits').slice(0, 100);
    const id = await batches.submit({
      model: 'digits',
      items: rows.map((r) => ({ inputs: r.inputs })),
      options: BatchOptions.parse({ itemsPerActivity: 25, concurrency: 50 }),
    });
    const summary = await client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id)).result();
    assert.equal(summary.counts.succeeded, 100);
    const { results } = await store.listResults(id, { limit: 1000 });
    assert.equal(results.length, 100);
    results.forEach((r) => assert.equal(r.result?.label, rows[r.index]!.expected.labelName, `item ${r.index}`));
    assert.deepEqual(await activityCompletions(id), { inferChunk: 4, recordBatchEnd: 1 });
  });

  test('a chunk stores its results run by run: readers see the finished runs while one of its items still runs', async () => {
    const runtime = new InferenceRuntime(new ModelRepository(path.join(ROOT, 'models')));
    cleanups.push(() => runtime.close());
    const gate = new GatedRuntime(runtime);
    const { store, batches } = await setup(gate);
    const rows = heldout('digits').slice(0, 300);
    const last = rows.length - 1;
    const items = rows.map((r, i) => ({
      inputs: i === last ? { input: [HELD, ...(r.inputs.input as number[]).slice(1)] } : r.inputs,
    }));
    const id = await batches.submit({
      model: 'digits',
      items,
      options: BatchOptions.parse({ itemsPerActivity: 300, concurrency: 300 }),
    });
    // One chunk: its 299 free items go as runs of at most 128 (maxBatchSize), the held one waits at the gate.
    await waitFor(
      'the free items to be stored',
      async () => (await store.countResults(id)).succeeded === last,
      30_000,
      20,
    );
    const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id));
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    assert.deepEqual(
      pending.map((a) => a.activityType?.name),
      ['inferChunk'],
      'the chunk is still running',
    );
    assert.equal(gate.held, 1);
    const { results } = await store.listResults(id, { limit: 1000 });
    results.forEach((r) => assert.equal(r.result?.label, rows[r.index]!.expected.labelName, `item ${r.index}`));
    gate.open();
    const summary = await handle.result();
    assert.equal(summary.counts.succeeded, rows.length);
    assert.deepEqual(await activityCompletions(id), { inferChunk: 1, recordBatchEnd: 1 });
  });

  test('a chunk retried whole keeps what its first attempt stored; the store and the workflow count the same attempts', async () => {
    const model = new FakeModel();
    let chunkAttempts = 0;
    // The first attempt stores three items, then its worker is "lost" (the activity fails); the second runs them all.
    const runtime: Pick<InferenceRuntime, 'infer' | 'inferMany'> = {
      infer: (m, v, inputs) => model.infer(m, v, inputs),
      async inferMany(m, v, inputs, onRun) {
        if (++chunkAttempts === 1) {
          for (let p = 0; p < 3; p++) await onRun([p], [await model.infer(m, v, inputs[p]!)]);
          throw new Error('worker lost in the middle of the chunk');
        }
        return model.inferMany(m, v, inputs, onRun);
      },
    };
    const { store, batches } = await setup(runtime);
    const id = await batches.submit({
      model: 'digits',
      items: [0, 1, 2, 3, 4].map((k) => item(Behaviour.ok, k)),
      options: BatchOptions.parse({ itemsPerActivity: 5, maxAttempts: 3, initialIntervalMs: 1000 }),
    });
    const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id));
    const summary = await handle.result();
    assert.equal(summary.counts.succeeded, 5);
    assert.equal(chunkAttempts, 2);
    for (const i of [0, 1, 2, 3, 4]) {
      const { attempts } = (await handle.query(itemQuery, { index: i }))!;
      assert.equal(attempts, i < 3 ? 1 : 2, `item ${i}: stored by attempt ${i < 3 ? 1 : 2} of the chunk`);
      assert.equal((await store.getResult(id, i))?.attempts, attempts, `item ${i}: the store's attempts`);
    }
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((k) => model.attempts.get(k)!.length),
      [1, 1, 1, 1, 1],
      'the retried chunk skipped the items its first attempt stored',
    );
  });

  test('a chunk larger than one slice, retried whole: slices its first attempt finished are skipped, the rest run once', async () => {
    const model = new FakeModel();
    // Read and handed to the model in slices of 64, then 1,000: [0, 64), [64, 1064), [1064, 2064), [2064, 2500).
    const total = 2500;
    let lost = false;
    // The first attempt's second slice stores ten items, then its worker is "lost"; its other slices run whole.
    const runtime: Pick<InferenceRuntime, 'infer' | 'inferMany'> = {
      infer: (m, v, inputs) => model.infer(m, v, inputs),
      async inferMany(m, v, inputs, onRun) {
        const first = (inputs[0]?.input as number[] | undefined)?.[1];
        if (first === 64 && !lost) {
          lost = true;
          for (let p = 0; p < 10; p++) await onRun([p], [await model.infer(m, v, inputs[p]!)]);
          throw new Error('worker lost in the middle of the chunk');
        }
        return model.inferMany(m, v, inputs, onRun);
      },
    };
    const { store, batches } = await setup(runtime);
    const id = await batches.submit({
      model: 'digits',
      items: Array.from({ length: total }, (_, k) => item(k === 2100 ? Behaviour.invalid : Behaviour.ok, k)),
      options: BatchOptions.parse({
        itemsPerActivity: total,
        shardSize: total,
        maxAttempts: 3,
        initialIntervalMs: 1000,
      }),
    });
    const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id));
    const summary = await handle.result();
    assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: total - 1, failed: 1, canceled: 0 });
    assert.ok(lost);
    const reruns = [...model.attempts].filter(([, times]) => times.length !== 1).map(([k]) => k);
    assert.deepEqual(reruns, [], 'every item ran once: the retried chunk skipped what its first attempt stored');
    assert.equal(model.attempts.size, total);
    // Stored by the first attempt: slices 0, 2 and 3 and ten items of slice 1; the rest of slice 1 by the second.
    for (const i of [0, 63, 64, 73, 74, 1063, 1064, 2063, 2064, 2100, 2499]) {
      const expected = i >= 74 && i < 1064 ? 2 : 1;
      const { attempts, status } = (await handle.query(itemQuery, { index: i }))!;
      assert.equal(attempts, expected, `item ${i}: the workflow's attempts`);
      assert.equal((await store.getResult(id, i))?.attempts, expected, `item ${i}: the store's attempts`);
      assert.equal(status, i === 2100 ? 'failed' : 'succeeded', `item ${i}`);
    }
    assert.equal((await store.getResult(id, 2100))?.error?.type, 'InvalidInput');
    assert.deepEqual(await store.countResults(id), { succeeded: total - 1, failed: 1 });
  });

  test('a chunk keeps per-item semantics: neighbours succeed, a bad item fails alone, a flaky item retries alone', async () => {
    const model = new FakeModel();
    const { store, batches } = await setup(model);
    const items = [
      item(Behaviour.ok, 1),
      item(Behaviour.invalid, 2),
      item(Behaviour.flaky, 3),
      item(Behaviour.broken, 4),
      item(Behaviour.ok, 5),
    ];
    const id = await batches.submit({
      model: 'digits',
      items,
      options: BatchOptions.parse({
        itemsPerActivity: 5,
        maxAttempts: 3,
        initialIntervalMs: 1000,
        backoffCoefficient: 2,
      }),
    });
    const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id));
    const summary = await handle.result();
    assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: 3, failed: 2, canceled: 0 });
    const state = async (i: number) => (await handle.query(itemQuery, { index: i }))!;
    assert.deepEqual([(await state(0)).status, (await state(0)).attempts], ['succeeded', 1]);
    assert.deepEqual(
      [(await state(1)).status, (await state(1)).attempts, (await state(1)).error?.type],
      ['failed', 1, 'InvalidInput'],
    );
    assert.deepEqual(
      [(await state(2)).status, (await state(2)).attempts],
      ['succeeded', 3],
      'flaky: chunk attempt + 2 alone',
    );
    assert.deepEqual(
      [(await state(3)).status, (await state(3)).attempts],
      ['failed', 3],
      'broken: all 3 attempts spent',
    );
    assert.equal(model.attempts.get(2)!.length, 1, 'the bad item was not retried');
    const [t1, t2, t3] = model.attempts.get(3)!;
    assert.ok(t2! - t1! >= 900 && t3! - t2! >= 1800, `backoff continued: ${t2! - t1!} then ${t3! - t2!} ms`);
    assert.equal((await store.getResult(id, 2))?.status, 'succeeded');
    assert.equal((await store.getResult(id, 3))?.status, 'failed', 'the exhausted item recorded its failure');
    for (const i of [0, 1, 2, 3, 4]) {
      const { attempts } = await state(i);
      assert.equal(
        (await store.getResult(id, i))?.attempts,
        attempts,
        `item ${i}: the store's attempts, the workflow's`,
      );
    }
    assert.equal((await store.getResult(id, 1))?.error?.type, 'InvalidInput');
    assert.deepEqual(
      await activityCompletions(id),
      { inferChunk: 1, inferItem: 1, recordBatchEnd: 1 },
      'one chunk, one solo retry that succeeded (and the last step, which records the batch end)',
    );
  });

  test(`shards of the largest size (${MAX_SHARD_SIZE}) in chunks: every item runs once, a bad item fails alone`, async () => {
    const model = new FakeModel();
    const { store, batches } = await setup(model);
    const total = 2 * MAX_SHARD_SIZE + 500; // two whole shards and a part one
    const bad = MAX_SHARD_SIZE + 4321; // inside the second shard's first chunk
    const id = await batches.submit({
      model: 'digits',
      items: Array.from({ length: total }, (_, k) => item(k === bad ? Behaviour.invalid : Behaviour.ok, k)),
      options: BatchOptions.parse({ itemsPerActivity: 5000, concurrency: 512, shardSize: MAX_SHARD_SIZE }),
    });
    const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id));
    const summary = await handle.result();
    assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: total - 1, failed: 1, canceled: 0 });
    assert.equal(model.attempts.size, total);
    assert.deepEqual(
      [...model.attempts].filter(([, times]) => times.length !== 1).map(([k]) => k),
      [],
      'every item ran once',
    );
    const history = await handle.fetchHistory();
    const shards = history.events!.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).length;
    assert.equal(shards, 3);
    assert.deepEqual(await store.countResults(id), { succeeded: total - 1, failed: 1 });
    assert.equal((await store.getResult(id, bad))?.error?.type, 'InvalidInput');
    assert.equal((await handle.query(itemQuery, { index: bad }))?.status, 'failed');
    for (const i of [0, MAX_SHARD_SIZE - 1, MAX_SHARD_SIZE, bad - 1, bad + 1, total - 1])
      assert.equal((await store.getResult(id, i))?.status, 'succeeded', `item ${i}`);
  });

  test('a chunk of 5000 items that all fail with a long message: its outcome fits in history, the store keeps each message whole', async () => {
    const message = `scripted bad input: ${'x'.repeat(2000)}`; // 5000 of them: 10 MB, five times Temporal's payload limit
    const runtime = {
      infer: async (): Promise<never> => {
        throw new InvalidInputError(message);
      },
      inferMany: async (_m: string, _v: number | undefined, inputs: ItemInputs[], onRun: RunHandler) => {
        await onRun(
          inputs.map((_, position) => position),
          inputs.map(() => new InvalidInputError(message)),
        );
      },
    };
    const { store, batches } = await setup(runtime);
    const total = 5000;
    const id = await batches.submit({
      model: 'digits',
      items: Array.from({ length: total }, (_, k) => item(Behaviour.invalid, k)),
      options: BatchOptions.parse({ itemsPerActivity: total, shardSize: total }),
    });
    const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id));
    const summary = await handle.result();
    assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: 0, failed: total, canceled: 0 });
    assert.deepEqual(await activityCompletions(id), { inferChunk: 1, recordBatchEnd: 1 });
    for (const i of [0, 2500, total - 1]) {
      const stored = await store.getResult(id, i);
      assert.deepEqual([stored?.error?.type, stored?.error?.message], ['InvalidInput', message], `item ${i} stored`);
      const state = await handle.query(itemQuery, { index: i });
      assert.equal(state?.error?.type, 'InvalidInput');
      assert.ok(
        state!.error!.message.length < message.length && message.startsWith(state!.error!.message.slice(0, -1)),
        `item ${i}: the workflow keeps the message's start (${state!.error!.message.length} characters)`,
      );
    }
  });
});
