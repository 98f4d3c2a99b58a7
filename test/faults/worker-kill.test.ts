// Fault: the batch worker that holds a running batch dies (SIGKILL), in each item mode, while a second worker
// polls the same task queue. Its items must run again on the survivor within seconds, and the batch must end
// with every invariant of test/helpers/faults.ts. Also: SIGTERM hands running items back at once.
import { TaskQueueType } from '../../src/client/task-queue-stats.js';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { shardWorkflowId } from '../../workflows/shard-workflow.js';
import type { BatchOptions } from '../../src/contracts/batch.js';
import type { Config } from '../../src/config.js';
import { startServer, type StartedServer } from '../../src/server.js';
import type { ItemStore } from '../../src/stores/item-store.js';
import { openItemStore } from '../../src/stores/open-stores.js';
import { heldout, http } from '../helpers/data.js';
import { assertInvariants, figure } from '../helpers/faults.js';
import {
  exitOf,
  outputOf,
  spawnBatchline,
  useTestTemporal,
  testConfig,
  testLog,
  waitFor,
} from '../helpers/temporal.js';

const rows = heldout('digits');
/**
 * Kill → the dead worker's remote items run again: at most this long (issue 23). Only the server is involved: the item
 * heartbeat timeout (2 s) and the first retry interval (1 s).
 */
const RERUN_BOUND_MS = 5000;
/**
 * Kill → the batch moves past the dead worker's items (and, for local items, they run again). This needs a workflow
 * task on another worker, which waits for the one the dead worker held (the workflow task and sticky queue timeouts,
 * 3 s) and replays the run's history, typically under 3 s in all. On a loaded machine a cold worker's replay can
 * outlast the timeout once, and the next try succeeds: 3 s more (6.0–6.1 s seen in full runs, local and chunked).
 */
const TAKEOVER_BOUND_MS = 8000;

/** How long a re-run of the victim's items may come after the batch moved past them (else none was needed). */
const NO_RERUN_AFTER_MS = 10_000;

/** Every batch here runs in shards of this many items (the default shardSize), so the kill hits a shard's items. */
const SHARD_SIZE = 1000;
/** Shards running at once (the default maxConcurrentShards). */
const MAX_CONCURRENT_SHARDS = 2;

const MODES: { name: string; total: number; options: Partial<BatchOptions> }[] = [
  {
    name: 'remote per item',
    total: 1500,
    options: { concurrency: 16, shardSize: SHARD_SIZE, maxConcurrentShards: MAX_CONCURRENT_SHARDS },
  },
  {
    name: 'local per item',
    total: 4000,
    options: {
      concurrency: 16,
      itemActivities: 'local',
      shardSize: SHARD_SIZE,
      maxConcurrentShards: MAX_CONCURRENT_SHARDS,
    },
  },
  {
    name: 'chunked',
    total: 20_000,
    options: {
      concurrency: 200,
      itemsPerActivity: 50,
      shardSize: SHARD_SIZE,
      maxConcurrentShards: MAX_CONCURRENT_SHARDS,
    },
  },
  {
    name: 'local chunked',
    total: 20_000,
    options: {
      concurrency: 200,
      itemsPerActivity: 50,
      itemActivities: 'local',
      shardSize: SHARD_SIZE,
      maxConcurrentShards: MAX_CONCURRENT_SHARDS,
    },
  },
];

async function submit(api: StartedServer, total: number, options: Partial<BatchOptions>): Promise<string> {
  const items = Array.from({ length: total }, (_, i) => ({ inputs: rows[i % rows.length]!.inputs }));
  const res = await http(api.url, 'POST', '/v1/batches', { model: 'digits', items, options });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
}

async function control(api: StartedServer, id: string, action: 'pause' | 'resume'): Promise<void> {
  const res = await http(api.url, 'POST', `/v1/batches/${id}/${action}`);
  assert.equal(res.status, 202, `${action}: ${JSON.stringify(res.body)}`);
}

/** The item events of a batch's log after `seq`, a call at a time. */
async function tailFrom(store: ItemStore, id: string, seq: number) {
  return {
    async next() {
      const out = [];
      for (;;) {
        const page = await store.listEvents(id, seq, 5000);
        for (const e of page) {
          seq = e.seq;
          if (e.kind === 'item') out.push(e);
        }
        if (page.length < 5000) return out;
      }
    },
  };
}

/** temporal.api.enums.v1.PendingActivityState: handed to a worker and not finished. */
const PENDING_ACTIVITY_STATE_STARTED = 2;

/** How many of the batch's item activities (in its shards) the server has handed to `worker` and not seen finish. */
async function heldBy(client: Client, id: string, total: number, worker: ChildProcess): Promise<number> {
  const shards = Math.ceil(total / SHARD_SIZE);
  let held = 0;
  for (let k = 0; k < shards; k++) {
    const shard = client.workflow.getHandle(shardWorkflowId(batchWorkflowId(id), k));
    const raw = await shard.describe().then(
      (d) => d.raw,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return { pendingActivities: [] }; // not started yet
        throw err;
      },
    );
    held += (raw.pendingActivities ?? []).filter(
      (a) => a.state === PENDING_ACTIVITY_STATE_STARTED && a.lastWorkerIdentity?.startsWith(`${worker.pid}@`),
    ).length;
  }
  return held;
}

/** Recorded outcomes of a batch so far. */
async function recorded(store: ItemStore, id: string): Promise<number> {
  const c = await store.countResults(id);
  return c.succeeded + c.failed;
}

/** Waits until a worker process polls the batch task queue (its identity is `<pid>@<host>`). */
async function polling(client: Client, config: Config, worker: ChildProcess): Promise<void> {
  await waitFor(
    `worker ${worker.pid} to poll`,
    async () => {
      const { pollers } = await client.workflowService.describeTaskQueue({
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: { name: config.TASK_QUEUE },
        taskQueueType: TaskQueueType.activity, // activity pollers: the worker is ready for items
      });
      return (pollers ?? []).some((p) => p.identity?.startsWith(`${worker.pid}@`));
    },
    60_000,
    100,
  ).catch((err) => {
    throw new Error(`${err.message}\n${outputOf(worker)}`);
  });
}

describe('fault: the batch worker dies mid-batch', () => {
  const env = useTestTemporal();

  const cases = [
    ...MODES.map((mode) => ({ mode, signal: 'SIGKILL' as const })),
    { mode: MODES[0]!, signal: 'SIGTERM' as const },
  ];
  for (const { mode, signal } of cases) {
    const what =
      signal === 'SIGKILL'
        ? 'the survivor re-runs its items within seconds'
        : 'the worker hands its items and the workflow back at once';
    test(`${signal}, ${mode.name}: ${what}; nothing lost or doubled`, async () => {
      const { temporal, client } = env;
      const config = testConfig(temporal.address);
      const api = await startServer(config, testLog);
      const store = await openItemStore(config);
      // The first worker alone takes the batch's first workflow task, so it holds the workflow (sticky) and its
      // first items: the worst worker to lose.
      const victim = spawnBatchline('worker', config);
      let survivor: ChildProcess | undefined;
      const local = mode.options.itemActivities === 'local';
      try {
        await polling(client, config, victim);
        const id = await submit(api, mode.total, mode.options);
        // The batch waits, paused, while the survivor starts (seconds under load): else the victim alone might finish
        // it first. Paused once the victim has recorded an item, so it holds the workflow and items by then.
        await waitFor('the first item', async () => (await recorded(store, id)) >= 1, 60_000, 20);
        await control(api, id, 'pause');
        survivor = spawnBatchline('worker', config);
        await polling(client, config, survivor);
        await control(api, id, 'resume');
        await waitFor('30% of the items', async () => (await recorded(store, id)) >= mode.total * 0.3, 120_000, 20);
        // SIGKILL: frozen first, so from this instant it does nothing more and the outcomes logged now are all it did.
        // SIGTERM: it shuts down as a deployment stops it, handing running items back.
        victim.kill(signal === 'SIGKILL' ? 'SIGSTOP' : 'SIGTERM');
        const diedAt = Date.now();
        const log = await tailFrom(store, id, 0);
        const atDeath = (await log.next()).length;
        const held = local ? 1 : await heldBy(client, id, mode.total, victim);
        if (signal === 'SIGKILL') {
          victim.kill('SIGKILL');
          assert.equal(await exitOf(victim), null, 'killed by a signal');
        }
        assert.ok(atDeath < mode.total, 'the batch was not over at the kill');
        // Remote items the victim held run again once their heartbeats stop (a second attempt); local ones, once the
        // survivor takes over the workflow task and runs them anew. Either way the survivor must move past the
        // window the victim held: more outcomes than the shards' windows hold cannot all be items running at the death.
        const firstResult = { rerun: 0, past: 0 };
        /** At most this many items were in flight at the death (each running shard has its window). */
        const inFlight = mode.options.concurrency! * MAX_CONCURRENT_SHARDS;
        let after = 0;
        await waitFor(
          "the survivor to re-run the victim's items and move past them",
          async () => {
            for (const e of await log.next()) {
              after++;
              // (After SIGTERM an item may have finished in time and none needs a re-run.)
              const rerun = e.attempts >= 2 || local || signal === 'SIGTERM' || held === 0;
              if (!firstResult.rerun && rerun) firstResult.rerun = Date.now() - diedAt;
              if (!firstResult.past && after > inFlight) firstResult.past = Date.now() - diedAt;
            }
            // An item the server counted as held may have sent its result just before the freeze: then nothing of
            // the victim's needs a re-run, and none comes. Past the window, a re-run gets NO_RERUN_AFTER_MS more.
            const noRerun = firstResult.past > 0 && Date.now() - diedAt > firstResult.past + NO_RERUN_AFTER_MS;
            return firstResult.past && (firstResult.rerun || noRerun);
          },
          120_000,
          20,
        );
        figure(`${signal}, ${mode.name}: item activities the worker was running`, local ? 'all (local)' : held);
        if (held > 0) {
          const rerunMs = firstResult.rerun || 'none needed (its items had finished)';
          figure(`${signal}, ${mode.name}: → first re-run item recorded`, rerunMs, firstResult.rerun ? 'ms' : '');
        }
        figure(`${signal}, ${mode.name}: → window moved past the dead worker's items`, firstResult.past, 'ms');
        if (signal === 'SIGTERM') assert.equal(await exitOf(victim), 0, `a clean exit:\n${outputOf(victim)}`);
        const { attempts } = await assertInvariants({ api: api.url, client, store }, id, mode.total);
        const rerun = [...attempts.values()].filter((a) => a >= 2).length;
        figure(`${signal}, ${mode.name}: items recorded with a second attempt`, rerun);
        for (const [what, ms] of Object.entries(firstResult).filter(([, ms]) => ms > 0)) {
          const bound = what === 'rerun' && !local ? RERUN_BOUND_MS : TAKEOVER_BOUND_MS;
          assert.ok(ms <= bound, `kill → ${what}: ${ms} ms (bound ${bound} ms)`);
        }
      } catch (err) {
        throw new Error(`${(err as Error).message}\nsurvivor output:\n${survivor ? outputOf(survivor) : ''}`, {
          cause: err,
        });
      } finally {
        victim.kill('SIGKILL');
        survivor?.kill('SIGTERM');
        if (survivor) await exitOf(survivor);
        await store.close();
        await api.close();
      }
    });
  }
});
