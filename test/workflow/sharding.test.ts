// Batches larger than a shard run as child workflows (batch-<id>/shard-<n>) that continue as new before their
// histories grow long. On the real dev server: a small batch with tiny shards and runs (to force every path),
// and 20,000 real digits items, checking every result once and every execution's history length.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { BatchOptions } from '../../src/contracts/batch.js';
import { InferenceRuntime } from '../../src/runtime/inference.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import type { batchWorkflow } from '../../workflows/batch-workflow.js';
import { cancelSignal, failuresQuery, progressQuery } from '../../workflows/messages.js';
import { heldout } from '../helpers/data.js';
import { Behaviour, FakeModel, item } from '../helpers/fake-model.js';
import { startWorkerStack, type WorkerStack } from '../helpers/stack.js';
import { quietTemporalLogs, ROOT, startTestTemporal, waitFor, type TestTemporal } from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

/** Every execution (run) of the batch and its shards, with its history length. */
async function executions(
  client: Client,
  batchId: string,
): Promise<{ workflowId: string; runId: string; events: number }[]> {
  const found: { workflowId: string; runId: string; events: number }[] = [];
  const id = batchWorkflowId(batchId);
  for await (const wf of client.workflow.list({
    query: `WorkflowId = '${id}' OR WorkflowId STARTS_WITH '${id}/shard-'`,
  })) {
    found.push({ workflowId: wf.workflowId, runId: wf.runId, events: wf.historyLength });
  }
  return found;
}

/** The largest single history event (payloads included) of any of these executions, in bytes. */
async function largestEvent(client: Client, runs: { workflowId: string; runId: string }[]): Promise<number> {
  let max = 0;
  for (const r of runs) {
    const history = await client.workflow.getHandle(r.workflowId, r.runId).fetchHistory();
    for (const e of history.events ?? []) max = Math.max(max, Buffer.byteLength(JSON.stringify(e)));
  }
  return max;
}

describe('sharded batches', () => {
  let temporal: TestTemporal;
  let client: Client;
  const stacks: WorkerStack[] = [];

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    client = new Client({ connection: await connectTemporal(temporal.address) });
  });
  after(async () => {
    for (const s of stacks) await s.close();
    await client?.connection.close();
    await temporal?.stop();
  });

  test('tiny shards and short runs: shards continue as new, the batch aggregates them exactly', async () => {
    const model = new FakeModel();
    const stack = await startWorkerStack(temporal.address, model);
    stacks.push(stack);
    const bad = new Set([7, 40, 111]);
    const items = Array.from({ length: 120 }, (_, i) => item(bad.has(i) ? Behaviour.invalid : Behaviour.ok, 1000 + i));
    const id = await stack.batches.submit({
      model: 'digits',
      items,
      options: BatchOptions.parse({ shardSize: 40, maxConcurrentShards: 2, eventsPerRun: 100, concurrency: 5 }),
    });
    const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id));
    const summary = await handle.result();
    assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: 117, failed: 3, canceled: 0 });
    assert.deepEqual(await stack.store.countResults(id), { succeeded: 117, failed: 3 });
    const dead = await handle.query(failuresQuery, {});
    assert.deepEqual(
      dead.items.map((i) => i.index),
      [7, 40, 111],
    );
    assert.equal(dead.items[0]!.error?.type, 'InvalidInput');
    const progress = await handle.query(progressQuery);
    assert.equal(progress.percent, 100);
    // The REST view joins the store, so items of ended shards are exact (the parent alone knows less).
    const view = await stack.batches.get(id, { cursor: 0, limit: 120 });
    assert.equal(view.items.length, 120);
    for (const it of view.items) {
      assert.equal(it.status, bad.has(it.index) ? 'failed' : 'succeeded', `item ${it.index}`);
      assert.ok(it.attempts >= 1, `item ${it.index} attempts ${it.attempts}`);
      if (!bad.has(it.index)) assert.equal(it.result?.label, `key-${1000 + it.index}`);
    }

    const runs = await executions(client, id);
    const shards = new Set(runs.filter((r) => r.workflowId.includes('/shard-')).map((r) => r.workflowId));
    assert.equal(shards.size, 3, 'three shards of 40');
    assert.ok(runs.length > shards.size + 1, `some runs continued as new: ${JSON.stringify(runs)}`);
    for (const r of runs) assert.ok(r.events < 400, `${r.workflowId} run ${r.runId}: ${r.events} events`);
    const biggest = await largestEvent(client, runs);
    assert.ok(biggest < 256 * 1024, `largest event ${biggest} bytes`);
    for (const i of [0, 39, 40, 119])
      assert.equal(model.attempts.get(1000 + i)?.length, 1, `item ${i} ran exactly once`);
  });

  test('a canceled sharded batch shows the items its ended shards did not run as canceled, never as succeeded', async (t) => {
    const model = new FakeModel();
    // Only at the end: the canceled item's model call may still record its result when it returns.
    t.after(() => model.release());
    const stack = await startWorkerStack(temporal.address, model);
    stacks.push(stack);
    // Shard 0 (items 0-1) succeeds; shard 1 (2-3) holds item 2 blocked when the batch is canceled; shard 2 never starts.
    const behaviours = [Behaviour.ok, Behaviour.ok, Behaviour.block, Behaviour.ok, Behaviour.ok, Behaviour.ok];
    const id = await stack.batches.submit({
      model: 'digits',
      items: behaviours.map((b, i) => item(b, 2000 + i)),
      options: BatchOptions.parse({ shardSize: 2, maxConcurrentShards: 1, concurrency: 2 }),
    });
    const handle = client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id));
    await waitFor('item 2 blocked', () => model.blocked === 1);
    await handle.signal(cancelSignal);
    const summary = await handle.result();
    assert.equal(summary.status, 'canceled');
    assert.equal(summary.counts.succeeded + summary.counts.canceled, 6);
    assert.ok(summary.counts.canceled >= 3, JSON.stringify(summary.counts)); // item 2 and shard 2's items
    const view = await stack.batches.get(id, { cursor: 0, limit: 6 });
    const stored = await stack.store.countResults(id);
    assert.equal(view.items.filter((i) => i.status === 'succeeded').length, stored.succeeded);
    for (const it of view.items) {
      if (it.status === 'succeeded') assert.equal(it.result?.label, `key-${2000 + it.index}`, `item ${it.index}`);
      else assert.equal(it.status, 'canceled', `item ${it.index}`);
    }
    assert.equal(view.items[2]!.status, 'canceled', 'the item running at the cancel');
    assert.deepEqual(
      view.items.slice(4).map((i) => i.status),
      ['canceled', 'canceled'],
      'the shard that never started',
    );
    const canceled = await stack.batches.items(id, undefined, { status: 'canceled', limit: 6 });
    assert.ok(canceled.items.length >= 3, JSON.stringify(canceled.items));
    for (const it of canceled.items) assert.equal(it.status, 'canceled', `filtered item ${it.index}`);
  });

  test('20,000 digits items: every result stored once and correct, no execution near 10,240 events', async (t) => {
    const runtime = new InferenceRuntime(new ModelRepository(path.join(ROOT, 'models')));
    const stack = await startWorkerStack(temporal.address, runtime);
    stacks.push(stack);
    t.after(() => runtime.close());
    const rows = heldout('digits');
    const n = 20_000;
    const started = Date.now();
    const id = await stack.batches.submit({
      model: 'digits',
      items: Array.from({ length: n }, (_, i) => ({ inputs: rows[i % rows.length]!.inputs })),
      options: BatchOptions.parse({ shardSize: 1000, maxConcurrentShards: 4, concurrency: 64 }),
    });
    const summary = await client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id)).result();
    const seconds = (Date.now() - started) / 1000;
    t.diagnostic(`${n} items in ${seconds.toFixed(1)} s (${Math.round(n / seconds)} items/s)`);
    assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: n, failed: 0, canceled: 0 });
    assert.deepEqual(await stack.store.countResults(id), { succeeded: n, failed: 0 });
    for (let cursor: number | undefined = 0; cursor !== undefined;) {
      const page = await stack.store.listResults(id, { cursor, limit: 5000 });
      for (const r of page.results) assert.equal(r.result?.label, rows[r.index % rows.length]!.expected.labelName);
      cursor = page.nextCursor;
    }
    const runs = await executions(client, id);
    const max = Math.max(...runs.map((r) => r.events));
    t.diagnostic(`${runs.length} executions, max ${max} history events`);
    assert.ok(max < 10_240, `max history ${max}`);
    const biggest = await largestEvent(client, runs);
    t.diagnostic(`largest history event ${biggest} bytes`);
    assert.ok(biggest < 256 * 1024, `largest event ${biggest} bytes`);
    assert.equal(new Set(runs.filter((r) => r.workflowId.includes('/shard-')).map((r) => r.workflowId)).size, 20);
  });
});
