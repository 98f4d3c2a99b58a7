// Nothing is lost when a process fails: a worker killed with SIGKILL mid-batch, and the dev server restarted
// mid-batch on the same SQLite file. Both run against the real dev server binary.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { BatchView } from '../../src/contracts/batch.js';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import type { Config } from '../../src/config.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { itemStoreFile, SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { startWorker } from '../../src/worker.js';
import { heldout, http } from '../helpers/data.js';
import {
  exitOf,
  outputOf,
  spawnBatchline,
  useTestTemporal,
  testConfig,
  testLog,
  waitFor,
  workflowBundle,
} from '../helpers/temporal.js';

const rows = heldout('digits');

/** Submits `n` held-out digits rows; item i is row i. Short item timeout so a lost attempt is retried quickly. */
async function submit(api: StartedServer, n: number, concurrency: number): Promise<string> {
  const res = await http(api.url, 'POST', '/v1/batches', {
    model: 'digits',
    items: rows.slice(0, n).map((r, i) => ({ id: `row-${i}`, inputs: r.inputs })),
    options: { concurrency, itemTimeoutMs: 3000, initialIntervalMs: 1000 },
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
}

async function view(api: StartedServer, id: string): Promise<BatchView> {
  const res = await http(api.url, 'GET', `/v1/batches/${id}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const items = await http(api.url, 'GET', `/v1/batches/${id}/items?limit=1000`);
  assert.equal(items.status, 200, JSON.stringify(items.body));
  return { ...res.body, items: items.body.items } as BatchView;
}

/**
 * Every item succeeded with scikit-learn's label, the item store holds exactly one result per item, that label, and
 * the history holds exactly one completion per item.
 */
async function assertEveryResultOnce(client: Client, config: Config, final: BatchView, n: number): Promise<void> {
  assert.equal(final.status, 'completed');
  assert.deepEqual(final.counts, { pending: 0, running: 0, succeeded: n, failed: 0, canceled: 0 });
  assert.deepEqual(
    final.items.map((i) => i.id),
    rows.slice(0, n).map((_, i) => `row-${i}`),
  );
  final.items.forEach((item, i) => assert.equal(item.result?.label, rows[i]!.expected.labelName, `item ${i}`));
  const store = new SqliteItemStore(itemStoreFile(config));
  try {
    const { results } = await store.listResults(final.id, { limit: n + 1 });
    assert.deepEqual(
      results.map((r) => [r.index, r.status, r.result?.label]),
      rows.slice(0, n).map((r, i) => [i, 'succeeded', r.expected.labelName]),
      "one stored result per item, the model's",
    );
  } finally {
    await store.close();
  }
  const history = await client.workflow.getHandle(batchWorkflowId(final.id)).fetchHistory();
  const types = new Map(
    history.events!.flatMap((e) =>
      e.activityTaskScheduledEventAttributes ? [[String(e.eventId), e.activityTaskScheduledEventAttributes]] : [],
    ),
  );
  const completions = history.events!.filter(
    (e) =>
      e.activityTaskCompletedEventAttributes &&
      types.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId))?.activityType?.name === 'inferItem',
  ).length;
  assert.equal(completions, n, 'one recorded activity completion per item: no result twice, none missing');
}

/** temporal.api.enums.v1.PendingActivityState: the activity was handed to a worker and has not finished. */
const PENDING_ACTIVITY_STATE_STARTED = 2;

/** The activities the server has handed to a worker and not yet seen finish: activity id -> that worker. */
async function startedActivities(handle: WorkflowHandle): Promise<Map<string, string>> {
  const { raw } = await handle.describe();
  const started = new Map<string, string>();
  for (const a of raw.pendingActivities ?? []) {
    if (a.state === PENDING_ACTIVITY_STATE_STARTED) started.set(a.activityId!, a.lastWorkerIdentity ?? '');
  }
  return started;
}

/** How each item's activity ended, from the history: its item, its last attempt, who completed it, and why it retried. */
async function itemActivities(handle: WorkflowHandle) {
  const events = (await handle.fetchHistory()).events ?? [];
  const byScheduledEvent = new Map<
    string,
    { activityId: string; index: number; attempt: number; retriedAfter?: string; completedBy?: string }
  >();
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const { index } = defaultPayloadConverter.fromPayload<{ index: number }>(scheduled.input!.payloads![0]!);
      byScheduledEvent.set(String(e.eventId), { activityId: scheduled.activityId!, index, attempt: 0 });
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const a = byScheduledEvent.get(String(started.scheduledEventId))!;
      a.attempt = started.attempt!;
      if (started.lastFailure)
        a.retriedAfter = started.lastFailure.timeoutFailureInfo ? 'timeout' : started.lastFailure.message!;
    }
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) byScheduledEvent.get(String(completed.scheduledEventId))!.completedBy = completed.identity!;
  }
  return new Map([...byScheduledEvent.values()].map((a) => [a.activityId, a]));
}

describe('durability', () => {
  const env = useTestTemporal();

  test('a worker killed with SIGKILL mid-batch: a new worker re-runs the items it was running, every result exactly once', async () => {
    const { temporal, client } = env;
    const config: Config = testConfig(temporal.address);
    const api = await startServer(config, testLog);
    const n = 300;
    let first = spawnBatchline('worker', config);
    let second: typeof first | undefined;
    try {
      const id = await submit(api, n, 4);
      const handle = client.workflow.getHandle(batchWorkflowId(id));
      await waitFor(
        'the first worker to have finished some items',
        async () => (await view(api, id)).counts.succeeded >= 20,
        90_000,
        20,
      );
      // The worker is frozen (SIGSTOP) while the server is asked what it is running, and killed frozen, so the items
      // the server had handed to it are exactly the work lost with it. Items take milliseconds: asked while it ran,
      // the answer would be stale by the time of the kill. Frozen between two items, it held none: it runs on for a
      // moment and is frozen again, as often as the server can answer (the batch lasts about a second).
      let freezes = 0;
      const started = await waitFor(
        'a freeze to catch the first worker running items',
        async () => {
          first.kill('SIGSTOP');
          freezes++;
          let running = new Map<string, string>();
          try {
            running = await startedActivities(handle);
          } finally {
            if (running.size === 0) first.kill('SIGCONT'); // nothing in flight at this instant: let it run on
          }
          return running.size > 0 ? running : undefined;
        },
        60_000,
        2,
      ).catch(async (err) => {
        const counts = JSON.stringify((await view(api, id)).counts);
        throw new Error(`${(err as Error).message} (${freezes} freezes; items now ${counts})\n${outputOf(first)}`);
      });
      // (Counted in the item store: a query of the batch would wait for the frozen worker, which holds the workflow.)
      const store = new SqliteItemStore(itemStoreFile(config));
      const atKill = { counts: await store.countResults(id).finally(() => store.close()), started };
      first.kill('SIGKILL');
      assert.equal(await exitOf(first), null, 'killed by a signal, not exited');
      assert.ok(atKill.counts.succeeded < n, `batch already done at kill time: ${JSON.stringify(atKill.counts)}`);

      second = spawnBatchline('worker', config);
      const final = await waitFor(
        'the batch to complete on the second worker',
        async () => {
          const v = await view(api, id);
          return v.status === 'completed' ? v : undefined;
        },
        120_000,
        200,
      ).catch((err) => {
        throw new Error(`${err.message}\nsecond worker output:\n${outputOf(second!)}`);
      });
      await assertEveryResultOnce(client, config, final, n);

      // Items the dead worker had started and never finished. (One whose result was already on its way to the
      // server when the worker froze was finished by it: its completion carries the dead worker's identity.)
      const activities = await itemActivities(handle);
      const lost = [...atKill.started]
        .map(([activityId, deadWorker]) => ({ ...activities.get(activityId)!, deadWorker }))
        .filter((a) => a.completedBy !== a.deadWorker);
      assert.ok(
        lost.length > 0,
        `the worker died running items it never finished: ${JSON.stringify([...atKill.started])}`,
      );
      // (The item store may hold the dead worker's own result for such an item, stored before it died unreported;
      // the retry's success then does not replace it: assertEveryResultOnce saw one stored result per item.)
      for (const a of lost) {
        const what = `item ${a.index} (running when the worker was killed)`;
        assert.ok(a.attempt >= 2, `${what}: attempted again, last attempt ${a.attempt}`);
        assert.equal(a.retriedAfter, 'timeout', `${what}: retried because the dead worker's attempt timed out`);
        assert.ok(a.completedBy, `${what}: completed by the new worker`);
        assert.ok(final.items[a.index]!.attempts >= 2, `${what}: the items view counts both attempts`);
      }
    } finally {
      first.kill('SIGKILL');
      second?.kill('SIGTERM');
      if (second) await exitOf(second);
      await api.close();
    }
  });

  test('the dev server restarted mid-batch (same db file): the batch completes', async () => {
    const { temporal, client } = env;
    const config: Config = testConfig(temporal.address);
    const api = await startServer(config, testLog);
    const worker = await startWorker(config, testLog, { workflowBundle: await workflowBundle() });
    const n = 200;
    try {
      const id = await submit(api, n, 2);
      const atRestart = await waitFor(
        'some items done',
        async () => {
          const v = await view(api, id);
          return v.counts.succeeded >= 20 ? v : undefined;
        },
        90_000,
        50,
      );
      await temporal.restart();
      assert.ok(atRestart.counts.succeeded < n, `batch already done at restart: ${JSON.stringify(atRestart.counts)}`);

      const final = await waitFor(
        'the batch to complete after the restart',
        async () => {
          const v = await view(api, id);
          return v.status === 'completed' ? v : undefined;
        },
        120_000,
        200,
      );
      await assertEveryResultOnce(client, config, final, n);
    } finally {
      await worker.shutdown();
      await api.close();
    }
  });
});
