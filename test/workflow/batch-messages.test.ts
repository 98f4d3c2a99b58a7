// batchWorkflow's retries, failures and messages on the real Temporal dev server. The model is a scripted fake
// (unit tests may fake the model, never Temporal): each item's first input value picks its behaviour.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { batchWorkflowId, type BatchClient } from '../../src/client/batch-client.js';
import { BatchOptions } from '../../src/contracts/batch.js';
import type { ItemStore } from '../../src/stores/item-store.js';
import {
  cancelSignal,
  failuresQuery,
  itemQuery,
  itemsQuery,
  pauseSignal,
  progressQuery,
  resumeSignal,
  retryFailedUpdate,
  setConcurrencySignal,
} from '../../workflows/messages.js';
import type { batchWorkflow } from '../../workflows/batch-workflow.js';
import { Behaviour, FakeModel, item } from '../helpers/fake-model.js';
import { startWorkerStack, type WorkerStack } from '../helpers/stack.js';
import { quietTemporalLogs, startTestTemporal, waitFor, type TestTemporal } from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

// Every behaviour holds for both kinds of item activity: remote (through the server's task queue) and local.
for (const itemActivities of ['remote', 'local'] as const)
  describe(`batchWorkflow messages and failure handling (${itemActivities} item activities)`, () => {
    let temporal: TestTemporal;
    let model: FakeModel;
    let stack: WorkerStack;
    let store: ItemStore;
    let batches: BatchClient;
    let client: Client;

    before(async () => {
      quietTemporalLogs();
      temporal = await startTestTemporal();
      model = new FakeModel();
      stack = await startWorkerStack(temporal.address, model);
      ({ store, batches } = stack);
      client = new Client({ connection: await connectTemporal(temporal.address) });
    });

    after(async () => {
      model?.release();
      await stack?.close();
      await client?.connection.close();
      await temporal?.stop();
    });

    async function submit(items: ReturnType<typeof item>[], options: Partial<BatchOptions> = {}) {
      const id = await batches.submit({
        model: 'digits',
        items,
        options: BatchOptions.parse({ itemActivities, ...options }),
      });
      return {
        id,
        handle: client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id)) as WorkflowHandle<
          typeof batchWorkflow
        >,
      };
    }

    test('a flaky item is retried with exponential backoff until it succeeds', async () => {
      // Temporal's server computes retry delays in whole seconds: 1 s, then 1 s x 2.
      const { id, handle } = await submit([item(Behaviour.flaky, 100)], {
        initialIntervalMs: 1000,
        backoffCoefficient: 2,
        maxAttempts: 5,
      });
      await handle.result();
      const view = await batches.get(id);
      assert.equal(view.items[0]!.status, 'succeeded');
      assert.equal(view.items[0]!.attempts, 3);
      const [t1, t2, t3] = model.attempts.get(100)!;
      const gap1 = t2! - t1!;
      const gap2 = t3! - t2!;
      assert.ok(gap1 >= 900, `first retry after ~1 s, got ${gap1} ms`);
      assert.ok(gap2 >= 1800, `second retry after ~2 s (1 s x 2), got ${gap2} ms`);
      assert.ok(gap2 > gap1 * 1.5, `backoff grows: ${gap1} then ${gap2} ms`);
      assert.equal(view.items[0]!.result?.label, 'key-100');
    });

    test('a non-retryable failure fails its item at once, with its reason, in the workflow and the store', async () => {
      const { id, handle } = await submit([item(Behaviour.invalid, 200), item(Behaviour.ok, 201)], { maxAttempts: 5 });
      await handle.result();
      assert.equal(model.attempts.get(200)!.length, 1, 'never retried');
      const failed = await handle.query(itemQuery, { index: 0 });
      assert.equal(failed?.status, 'failed');
      assert.equal(failed?.error?.type, 'InvalidInput');
      assert.match(failed!.error!.message, /scripted bad input/);
      const stored = (await store.getResult(id, 0))!;
      assert.equal(stored.status, 'failed');
      assert.equal(stored.error?.type, 'InvalidInput');
      assert.equal((await store.getResult(id, 1))?.status, 'succeeded', 'its neighbour is unaffected');
    });

    test('items that exhaust their attempts form the dead-letter set; retryFailed re-runs them', async () => {
      model.healed = false;
      const { id, handle } = await submit(
        [item(Behaviour.broken, 300), item(Behaviour.block, 301), item(Behaviour.broken, 302), item(Behaviour.ok, 303)],
        { maxAttempts: 2, initialIntervalMs: 1000, concurrency: 4 },
      );
      const dead = await waitFor('two items in the dead-letter set', async () => {
        const page = await handle.query(failuresQuery, {});
        return page.items.length === 2 ? page : undefined;
      });
      assert.deepEqual(
        dead.items.map((i) => [i.index, i.attempts]),
        [
          [0, 2],
          [2, 2],
        ],
      );
      assert.equal((await store.getResult(id, 0))?.status, 'failed', 'the last attempt recorded its failure');

      model.healed = true;
      const { retried } = await handle.executeUpdate(retryFailedUpdate);
      assert.equal(retried, 2);
      await waitFor('the retried items to succeed', async () => {
        const page = await handle.query(itemsQuery, { status: 'succeeded' });
        return page.items.length === 3;
      });
      model.release();
      const summary = await handle.result();
      assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: 4, failed: 0, canceled: 0 });
      assert.equal(
        (await store.getResult(id, 0))?.status,
        'succeeded',
        'the stored failure was replaced by the success',
      );
      assert.equal((await handle.query(itemQuery, { index: 2 }))?.attempts, 3, 'two failed attempts, then one more');
    });

    test('pause stops new items from starting; resume continues', async () => {
      const { handle } = await submit(
        Array.from({ length: 6 }, (_, i) => item(Behaviour.block, 400 + i)),
        { concurrency: 2 },
      );
      await waitFor('two items running', () => model.blocked === 2);
      await handle.signal(pauseSignal);
      await waitFor('the pause to be seen', async () => (await handle.query(progressQuery)).paused);
      model.release(); // the two running items finish; nothing new may start
      await waitFor(
        'the running items to finish',
        async () => (await handle.query(progressQuery)).counts.succeeded === 2,
      );
      const paused = await handle.query(progressQuery);
      assert.deepEqual([paused.counts.running, paused.counts.pending, model.blocked], [0, 4, 0]);

      await handle.signal(resumeSignal);
      await waitFor('items to start again', () => model.blocked === 2);
      model.release();
      await waitFor('the next two', () => model.blocked === 2);
      model.release();
      const summary = await handle.result();
      assert.equal(summary.counts.succeeded, 6);
    });

    test('setConcurrency changes how many items run at once; a concurrency of 0 is ignored', async () => {
      const { handle } = await submit(
        Array.from({ length: 12 }, (_, i) => item(Behaviour.block, 500 + i)),
        { concurrency: 2 },
      );
      await waitFor('two running', () => model.blocked === 2);
      assert.equal((await handle.query(progressQuery)).concurrency, 2);
      await handle.signal(setConcurrencySignal, { concurrency: 5 });
      await waitFor('five running', () => model.blocked === 5);
      assert.equal((await handle.query(progressQuery)).counts.running, 5);
      await handle.signal(setConcurrencySignal, { concurrency: 0 }); // out of range: must be ignored
      // The server answers a query only once the workflow has handled every event recorded before it, so this query
      // sees the signal: were 0 accepted, it would say 0.
      assert.equal((await handle.query(progressQuery)).concurrency, 5, 'setConcurrency 0 left the concurrency at 5');
      // And the batch still runs five at a time: the next five start when the running five finish.
      model.release();
      await waitFor('the next five running', () => model.blocked === 5);
      const next = await handle.query(progressQuery);
      assert.deepEqual([next.counts.succeeded, next.counts.running], [5, 5]);
      while ((await handle.query(progressQuery)).counts.succeeded < 12) {
        await waitFor(
          'blocked items',
          async () => model.blocked > 0 || (await handle.query(progressQuery)).counts.succeeded === 12,
        );
        model.release();
      }
      await handle.result();
    });

    // Remote item activities only: a local window has no ramp (FIRST_TASK_RAMP_PATCH in workflows/item-window.ts).
    if (itemActivities === 'remote')
      test('a window wider than 8 starts 8 items in its first workflow task, then fills up', async () => {
        const { handle } = await submit(
          Array.from({ length: 20 }, (_, i) => item(Behaviour.block, 800 + i)),
          { concurrency: 16 },
        );
        // No item ends while they all block: the ramp's timer fills the window.
        await waitFor('sixteen running', () => model.blocked === 16);
        const events = (await handle.fetchHistory()).events!;
        const done = events.findIndex((e) => e.workflowTaskCompletedEventAttributes);
        const next = events.findIndex((e, k) => k > done && e.workflowTaskScheduledEventAttributes);
        const firstTask = events.slice(done, next);
        assert.equal(firstTask.filter((e) => e.activityTaskScheduledEventAttributes).length, 8, 'items of task 1');
        assert.equal(firstTask.filter((e) => e.timerStartedEventAttributes).length, 1, "the ramp's timer");
        assert.equal(events.filter((e) => e.activityTaskScheduledEventAttributes).length, 16, 'items in flight');
        assert.equal((await handle.query(progressQuery)).counts.running, 16);
        while ((await handle.query(progressQuery)).counts.succeeded < 20) {
          await waitFor(
            'blocked items',
            async () => model.blocked > 0 || (await handle.query(progressQuery)).counts.succeeded === 20,
          );
          model.release();
        }
        assert.equal((await handle.result()).counts.succeeded, 20);
      });

    test('the cancel signal cancels running items, marks the rest canceled and keeps finished results', async (t) => {
      t.after(() => model.release());
      const { id, handle } = await submit(
        [item(Behaviour.ok, 600), ...Array.from({ length: 5 }, (_, i) => item(Behaviour.block, 601 + i))],
        { concurrency: 3 },
      );
      await waitFor('the first item done and others blocked', async () => {
        const p = await handle.query(progressQuery);
        return p.counts.succeeded === 1 && model.blocked === 3;
      });
      await handle.signal(cancelSignal);
      const summary = await handle.result(); // the signal completes the batch as canceled (Temporal's cancel: CANCELLED)
      assert.equal(summary.status, 'canceled');
      assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: 1, failed: 0, canceled: 5 });
      assert.equal((await store.getResult(id, 0))?.status, 'succeeded', 'the finished result is kept');
      assert.equal(
        model.blocked,
        3,
        'the batch ended while its three items were still in the model: cancelled, not awaited',
      );
      if (itemActivities === 'remote') {
        const history = await handle.fetchHistory();
        const cancelRequests = history.events!.filter((e) => e.activityTaskCancelRequestedEventAttributes).length;
        assert.equal(cancelRequests, 3, 'each running activity was asked to cancel');
      }
      const view = await batches.get(id);
      assert.equal(view.status, 'canceled');
    });

    test('queries answer from inside a running batch: item, items by state, progress with rate and ETA', async () => {
      const { handle } = await submit(
        [item(Behaviour.ok, 700), item(Behaviour.ok, 701), item(Behaviour.block, 702), item(Behaviour.block, 703)],
        { concurrency: 2 },
      );
      await waitFor(
        'two done, two blocked',
        async () => (await handle.query(progressQuery)).counts.succeeded === 2 && model.blocked === 2,
      );
      const progress = await handle.query(progressQuery);
      assert.equal(progress.status, 'running');
      assert.equal(progress.percent, 50);
      assert.ok(progress.itemsPerSecond > 0);
      // Workflow time is the time of its last activation. Remote: the item completions just now. Local: workflow
      // tasks that only record local activities in progress do not wake the workflow, so its clock (and this ETA)
      // may be seconds old while both items stay blocked.
      assert.ok(progress.eta);
      if (itemActivities === 'remote') assert.ok(Date.parse(progress.eta) >= Date.now() - 1000);
      else assert.ok(Date.parse(progress.eta) >= Date.parse(progress.updatedAt));
      const running = await handle.query(itemsQuery, { status: 'running' });
      assert.deepEqual(
        running.items.map((i) => i.index),
        [2, 3],
      );
      const first = await handle.query(itemQuery, { index: 0 });
      assert.equal(first?.status, 'succeeded');
      assert.ok(first?.startedAt && first.finishedAt);
      assert.equal(await handle.query(itemQuery, { index: 99 }), null);
      const paged = await handle.query(itemsQuery, { limit: 1, cursor: 1 });
      assert.deepEqual([paged.items[0]!.index, paged.nextCursor], [1, 2]);
      model.release();
      await handle.result();
    });
  });
