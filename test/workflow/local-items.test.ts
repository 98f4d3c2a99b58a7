// Local item activities must replay: their results are markers recorded inside long workflow tasks, and anything
// the workflow decides while they complete must come out the same when a worker rebuilds it from history. A worker
// that caches no workflow replays the whole history on every workflow task, so any divergence fails the batch.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { BatchOptions } from '../../src/contracts/batch.js';
import { shardProgressSignal } from '../../workflows/messages.js';
import { Behaviour, FakeModel, item } from '../helpers/fake-model.js';
import { startWorkerStack, type WorkerStack } from '../helpers/stack.js';
import { quietTemporalLogs, startTestTemporal, waitFor, type TestTemporal } from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

/**
 * A dev server, a worker on it with its own FakeModel (`workerOptions` over the test stack's), and a client, started
 * before the enclosing describe block's tests and stopped after them.
 */
function workerOnDevServer(workerOptions?: Parameters<typeof startWorkerStack>[3]) {
  const env = {} as { temporal: TestTemporal; stack: WorkerStack; client: Client; model: FakeModel };
  before(async () => {
    quietTemporalLogs();
    env.temporal = await startTestTemporal();
    env.model = new FakeModel();
    env.stack = await startWorkerStack(env.temporal.address, env.model, {}, workerOptions);
    env.client = new Client({ connection: await connectTemporal(env.temporal.address) });
  });
  after(async () => {
    env.model?.release();
    await env.stack?.close();
    await env.client?.connection.close();
    await env.temporal?.stop();
  });
  return env;
}

describe('local item activities on a worker without a workflow cache', () => {
  const env = workerOnDevServer({ maxCachedWorkflows: 0 });

  /** The first item index of every shard that has reported progress to the batch, as the batch's history holds it. */
  async function shardsReported(batchWorkflowId: string): Promise<Set<number>> {
    const { events } = await env.client.workflow.getHandle(batchWorkflowId).fetchHistory();
    const starts = new Set<number>();
    for (const e of events ?? []) {
      const signaled = e.workflowExecutionSignaledEventAttributes;
      if (signaled?.signalName !== shardProgressSignal.name) continue;
      starts.add(defaultPayloadConverter.fromPayload<{ start: number }>(signaled.input!.payloads![0]!).start);
    }
    return starts;
  }

  for (const itemsPerActivity of [1, 20])
    test(`a sharded batch whose items run for seconds completes, every item once, shards reporting, no task failed (${itemsPerActivity} per activity)`, async () => {
      // One item per shard blocks in the model until a shard has reported its progress to the batch: its report
      // timer has fired and its signal sits in history amid local activity markers, which every later workflow task
      // of the shard and the batch replays (no cache). How long that takes varies: without a cache, a shard's
      // workflow task that holds its blocked item may be dropped (another run takes the one cache slot) and time
      // out, and its timer starts only in a later task. So the test waits for the report itself.
      const blocked = new Set([10, 150, 250]);
      const items = Array.from({ length: 300 }, (_, i) =>
        item(blocked.has(i) ? Behaviour.block : Behaviour.ok, 1000 + i),
      );
      const id = await env.stack.batches.submit({
        model: 'digits',
        items,
        options: BatchOptions.parse({
          itemActivities: 'local',
          itemsPerActivity,
          shardSize: 100,
          maxConcurrentShards: 3,
          concurrency: 40,
        }),
      });
      const wid = batchWorkflowId(id);
      await waitFor('one item of each shard blocked', () => env.model.blocked >= 3);
      await waitFor(
        'a shard to report progress to the batch while the items block',
        async () => (await shardsReported(wid)).size > 0,
        90_000,
        500,
      );
      const release = setInterval(() => env.model.release(), 200); // items re-run after an eviction block again
      const summary = await env.client.workflow
        .getHandle(wid)
        .result()
        .finally(() => clearInterval(release));
      assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: 300, failed: 0, canceled: 0 });
      assert.equal((await env.stack.store.listResults(id, { limit: 1000 })).results.length, 300);
      for (const wf of ['', '/shard-0', '/shard-1', '/shard-2']) {
        const events = (await env.client.workflow.getHandle(`${wid}${wf}`).fetchHistory()).events!;
        const failedTasks = events.filter((e) => e.workflowTaskFailedEventAttributes);
        assert.deepEqual(
          failedTasks.map((e) => e.workflowTaskFailedEventAttributes!.failure?.message),
          [],
          `${wf || 'parent'}: no workflow task failed`,
        );
      }
    });
});

describe('local item activities on a worker with a workflow cache', () => {
  const env = workerOnDevServer();

  test('shards of local items that continue as new: no run refused its end for an event it had not seen', async (t) => {
    // The workflow tasks of a run with local items stay open while they run (seconds). A run used to report its
    // progress on a timer, and the task that continued it as new or ended it often met the timer's or a report's
    // event: Temporal refuses to close a run with an event it has not seen (UnhandledCommand), and the worker then
    // replayed the whole run and ran again the items whose markers that task held (on a real stack, most runs of
    // 20k items had such refusals). A run now closes only once nothing of its own making can bring an event: no
    // timer, every report delivered. Shards of 5,000 items, 1,000 events per run: a few runs each.
    const n = 20_000;
    const items = Array.from({ length: n }, (_, i) => item(Behaviour.ok, 5000 + i));
    const id = await env.stack.batches.submit({
      model: 'digits',
      items,
      options: BatchOptions.parse({ itemActivities: 'local', shardSize: 5000, eventsPerRun: 1000, concurrency: 64 }),
    });
    const wid = batchWorkflowId(id);
    const summary = await env.client.workflow.getHandle(wid).result();
    assert.deepEqual(summary.counts, { pending: 0, running: 0, succeeded: n, failed: 0, canceled: 0 });

    // Every run of every shard, first to last: the parent's history names each shard's first run, and each run
    // that continued as new names the next.
    const parent = (await env.client.workflow.getHandle(wid).fetchHistory()).events!;
    const firstRuns = parent.flatMap((e) => {
      const started = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
      return started ? [{ workflowId: started.workflowId!, runId: started.runId! }] : [];
    });
    assert.equal(firstRuns.length, 4, 'four shards');
    let runs = 0;
    let continued = 0;
    const refused: string[] = [];
    const timedOut: string[] = [];
    /** What could still bring an event when the run closed: timers started, signals sent and not delivered. */
    const pendingAtClose: string[] = [];
    for (const first of firstRuns) {
      for (let runId: string | undefined = first.runId; runId;) {
        const { events } = await env.client.workflow.getHandle(first.workflowId, runId).fetchHistory();
        runs++;
        let timers = 0;
        let signals = 0;
        for (const e of events ?? []) {
          const f = e.workflowTaskFailedEventAttributes;
          if (f) refused.push(`${first.workflowId} run ${runId}: cause ${f.cause}: ${f.failure?.message}`);
          if (e.workflowTaskTimedOutEventAttributes) timedOut.push(`${first.workflowId} run ${runId}`);
          if (e.timerStartedEventAttributes) timers++;
          if (e.timerFiredEventAttributes || e.timerCanceledEventAttributes) timers--;
          if (e.signalExternalWorkflowExecutionInitiatedEventAttributes) signals++;
          if (e.externalWorkflowExecutionSignaledEventAttributes) signals--;
        }
        if (timers > 0 || signals > 0)
          pendingAtClose.push(`${first.workflowId} run ${runId}: ${timers} timers, ${signals} signals undelivered`);
        runId = events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
        if (runId) continued++;
      }
    }
    assert.ok(continued >= 2, `shard runs that continued as new: ${continued} of ${runs}`);
    assert.deepEqual(pendingAtClose, [], 'no run closed while an event of its own making could still arrive');
    assert.deepEqual(refused, [], 'no workflow task of a shard failed');
    // A task that outran its timeout on this busy test process is another matter (its run replays too): counted, not
    // asserted.
    t.diagnostic(`${runs} shard runs, ${continued} continued as new; workflow tasks timed out: ${timedOut.length}`);
    const ranAgain = items.filter((_, i) => (env.model.attempts.get(5000 + i)?.length ?? 0) !== 1).length;
    t.diagnostic(`items run more than once: ${ranAgain} of ${n}`);
  });
});
