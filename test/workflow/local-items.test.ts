// Local item activities must replay: their results are markers recorded inside long workflow tasks, and anything
// the workflow decides while they complete must come out the same when a worker rebuilds it from history. A worker
// that caches no workflow replays the whole history on every workflow task, so any divergence fails the batch.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { BatchOptions } from '../../src/contracts/batch.js';
import { Behaviour, FakeModel, item } from '../helpers/fake-model.js';
import { startWorkerStack, type WorkerStack } from '../helpers/stack.js';
import { quietTemporalLogs, startTestTemporal, waitFor, type TestTemporal } from '../helpers/temporal.js';

describe('local item activities on a worker without a workflow cache', () => {
  let temporal: TestTemporal;
  let stack: WorkerStack;
  let client: Client;
  let model: FakeModel;

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    model = new FakeModel();
    stack = await startWorkerStack(temporal.address, model, {}, { maxCachedWorkflows: 0 });
    client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  });

  after(async () => {
    model?.release();
    await stack?.close();
    await client?.connection.close();
    await temporal?.stop();
  });

  for (const itemsPerActivity of [1, 20])
  test(`a sharded batch whose items run for seconds completes, every item once, shards reporting, no task failed (${itemsPerActivity} per activity)`, async () => {
    // One item per shard blocks in the model for 12 s: meanwhile the shards' report timer fires, they signal the
    // parent, and every workflow task replays the history with those signals amid local activity markers. Without
    // a cache, a shard's first workflow task may time out (5 s) holding the blocked item instead of heartbeating, and
    // its timer starts only in the task after that; 12 s leaves room for that timer to fire while the item blocks.
    const blocked = new Set([10, 150, 250]);
    const items = Array.from({ length: 300 }, (_, i) => item(blocked.has(i) ? Behaviour.block : Behaviour.ok, 1000 + i));
    const id = await stack.batches.submit({
      model: 'digits',
      items,
      options: BatchOptions.parse({ itemActivities: 'local', itemsPerActivity, shardSize: 100, maxConcurrentShards: 3, concurrency: 40 }),
    });
    await waitFor('one item of each shard blocked', () => model.blocked >= 3);
    await new Promise((r) => setTimeout(r, 12_000));
    const release = setInterval(() => model.release(), 200); // items re-run after an eviction block again
    const summary = await client.workflow.getHandle(batchWorkflowId(id)).result().finally(() => clearInterval(release));
    assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: 300, failed: 0, canceled: 0 });
    assert.equal(stack.store.listResults(id, { limit: 1000 }).results.length, 300);
    let reports = 0;
    for (const wf of ['', '/shard-0', '/shard-1', '/shard-2']) {
      const events = (await client.workflow.getHandle(`${batchWorkflowId(id)}${wf}`).fetchHistory()).events!;
      const failedTasks = events.filter((e) => e.workflowTaskFailedEventAttributes);
      assert.deepEqual(failedTasks.map((e) => e.workflowTaskFailedEventAttributes!.failure?.message), [], `${wf || 'parent'}: no workflow task failed`);
      reports += events.filter((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes).length;
    }
    assert.ok(reports > 0, 'shards reported progress to the parent while items ran');
  });
});
