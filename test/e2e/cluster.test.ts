// batchline on a real cluster (src/cluster/cluster.ts, what `batchline cluster` runs): a local PostgreSQL holding
// the item store and the Temporal server's databases, the Temporal server on it, two batch worker hosts, the
// interactive worker and two API hosts, each a process of its own sharing only PostgreSQL and Temporal. A batch
// crosses hosts; a worker host is SIGKILLed mid-batch (per item and chunked); the Temporal server and PostgreSQL are
// restarted mid-batch; the API's list and the Temporal CLI agree on the batches' search attributes. Then
// `batchline cluster` itself: up, answering, its batch worker at the nice of its CPU weight, and SIGINT leaves none
// of its processes behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { niceForWeight, ROLES } from '../../src/cluster/topology.js';
import type { BatchOptions, BatchResource } from '../../src/contracts/batch.js';
import {
  activeStatements,
  activityPollers,
  backends,
  batchlineFromSource,
  clusterDataDir,
  freePortRun,
  itemActivities,
  itemsRecorded,
  processesOf,
  startedActivities,
  startTestCluster,
  stillRunning,
  storedRows,
  temporalWorkflowList,
  workerIdentity,
  type ItemActivity,
  type ProcessEntry,
  type TestCluster,
} from '../helpers/cluster.js';
import { heldout, http } from '../helpers/data.js';
import { readSse, type SseEvent } from '../helpers/sse.js';
import { exitOf, quietTemporalLogs, ROOT, waitFor } from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

const rows = heldout('digits');
/** The items of every batch here: held-out row i % rows.length, with a client id. */
const items = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `digit-${i}`, inputs: rows[i % rows.length]!.inputs }));
const expectedLabel = (index: number) => rows[index % rows.length]!.expected.labelName;
const indexes = (n: number) => Array.from({ length: n }, (_, i) => i);
const allSucceeded = (n: number) => ({ pending: 0, running: 0, succeeded: n, failed: 0, canceled: 0 });
/** The items an activity covers. */
const itemsOf = (a: ItemActivity) => Array.from({ length: a.count }, (_, k) => a.start + k);
/**
 * For batches that lose a worker or a server: an attempt lost with a worker times out after 3 s and runs again a
 * second later, and an item whose attempts all fall into an outage is never failed for it. One workflow run (no
 * continue-as-new): the history checks read the run's history.
 */
const SURVIVES: Partial<BatchOptions> = {
  itemTimeoutMs: 3000,
  initialIntervalMs: 1000,
  maxAttempts: 8,
  eventsPerRun: 9000,
};
const WORKERS = ['worker-1', 'worker-2'] as const;

describe('a batchline cluster: PostgreSQL, the Temporal server on it, two worker hosts and two API hosts', () => {
  let tc: TestCluster;
  let client: Client;
  let api1: string;
  let api2: string;
  /** Pids of processes a test killed on purpose: their exits are expected. */
  const killed = new Set<number>();
  /** Every batch submitted here, for the list checks. */
  const submitted: string[] = [];

  /** A failure message with the cluster's recent output. */
  const withOutput = (err: Error) => new Error(`${err.message}\n--- cluster output:\n${tc.output()}`);

  /** Batchline processes that exited without a test killing them (a host that died on its own). */
  const unexpectedExits = () => tc.exits.filter((e) => e.pid === undefined || !killed.has(e.pid));

  async function submit(url: string, n: number, options: Partial<BatchOptions>): Promise<string> {
    const res = await http(url, 'POST', '/v1/batches', { model: 'digits', items: items(n), options });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    submitted.push(res.body.id as string);
    return res.body.id as string;
  }

  async function batch(url: string, id: string) {
    const res = await http(url, 'GET', `/v1/batches/${id}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as BatchResource;
  }

  function waitForStatus(url: string, id: string, status: BatchResource['status']) {
    return waitFor(
      `batch ${id} to be ${status}`,
      async () => {
        const b = await batch(url, id);
        return b.status === status ? b : undefined;
      },
      120_000,
      200,
    ).catch((err: Error) => {
      throw withOutput(err);
    });
  }

  /** Waits until the batch's succeeded items reach `count`, and returns its state then. */
  function waitForSucceeded(url: string, id: string, count: number) {
    return waitFor(
      `${count} items of ${id} to succeed`,
      async () => {
        const b = await batch(url, id);
        return b.counts.succeeded >= count ? b : undefined;
      },
      90_000,
      20,
    ).catch((err: Error) => {
      throw withOutput(err);
    });
  }

  /** Waits until `worker` polls the batch task queue under its current identity. */
  function waitForPolling(worker: string) {
    const identity = workerIdentity(tc.process(worker));
    return waitFor(
      `${worker} (${identity}) to poll ${tc.taskQueue}`,
      async () => (await activityPollers(client, tc.namespace, tc.taskQueue)).includes(identity),
      120_000,
      250,
    ).catch((err: Error) => {
      throw withOutput(err);
    });
  }

  /**
   * The batch completed and every item is there once: through API 2 the counts, one result line per item with
   * scikit-learn's label, one item per index; in the item store one result row and one item event per item; in the
   * history one completed activity per item. Returns the results, the items and the activities, by index / id.
   */
  async function assertEveryItemOnce(id: string, n: number) {
    const final = await batch(api2, id);
    assert.equal(final.status, 'completed');
    assert.deepEqual(final.counts, allSucceeded(n), 'every item succeeded');

    const listed = await fetch(`${api2}/v1/batches/${id}/results`);
    assert.equal(listed.status, 200);
    const results = (await listed.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { index: number; id: string; status: string; attempts: number; result?: any });
    assert.deepEqual(
      results.map((r) => [r.index, r.id, r.status, r.result?.label]),
      indexes(n).map((i) => [i, `digit-${i}`, 'succeeded', expectedLabel(i)]),
      "one result per item, the model's label",
    );

    const page = await http(api2, 'GET', `/v1/batches/${id}/items?limit=1000`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    const itemViews = page.body.items as { index: number; status: string; attempts: number }[];
    assert.deepEqual(
      itemViews.map((i) => [i.index, i.status]),
      indexes(n).map((i) => [i, 'succeeded']),
    );

    const stored = await storedRows(tc.cluster.databaseUrl, id);
    const once = new Map(indexes(n).map((i) => [i, 1]));
    assert.deepEqual(stored.results, once, 'the item store holds one result row per item');
    assert.deepEqual(stored.events, once, 'the item store holds one item event per item');

    const activities = await itemActivities(client.workflow.getHandle(batchWorkflowId(id)));
    const completions = new Map<number, number>();
    for (const a of activities.values()) {
      if (a.completedBy) for (const i of itemsOf(a)) completions.set(i, (completions.get(i) ?? 0) + 1);
    }
    assert.deepEqual(
      new Map([...completions].sort(([a], [b]) => a - b)),
      once,
      'the history holds one completed activity per item',
    );
    return {
      results: new Map(results.map((r) => [r.index, r])),
      items: new Map(itemViews.map((i) => [i.index, i])),
      activities,
    };
  }

  /** Follows an SSE stream to its end event; fails if it closes before. */
  async function eventsToEnd(url: string, timeoutMs: number): Promise<SseEvent[]> {
    const events: SseEvent[] = [];
    for await (const e of readSse(url, { signal: AbortSignal.timeout(timeoutMs) })) {
      events.push(e);
      if (e.id === 'end') return events;
    }
    throw new Error(`${url} closed before its end event (${events.length} events)`);
  }

  before(async () => {
    quietTemporalLogs();
    tc = await startTestCluster({ workers: 2, apis: 2 });
    [api1, api2] = tc.cluster.apiUrls as [string, string];
    client = new Client({
      connection: await connectTemporal(tc.cluster.temporal.address),
      namespace: tc.namespace,
    });
    // Ready: each API sees workers on both task queues, and both batch workers poll (a batch can reach either).
    await Promise.all(
      tc.cluster.apiUrls.map((url) =>
        waitFor(`${url} to be ready`, async () => (await http(url, 'GET', '/readyz')).status === 200, 120_000, 250),
      ),
    ).catch((err: Error) => {
      throw withOutput(err);
    });
    await Promise.all(WORKERS.map(waitForPolling));
  });

  after(async () => {
    await client?.connection.close();
    await tc?.stop();
  });

  test(
    'a batch submitted to API 1 runs on both worker hosts and reads back complete through API 2, whose SSE ' +
      'stream has every item once',
    { timeout: 120_000 },
    async () => {
      const n = 300;
      const recordedBefore = await Promise.all(WORKERS.map((w) => itemsRecorded(tc.metricsUrl(w))));

      const id = await submit(api1, n, { concurrency: 16 });
      const events = await eventsToEnd(`${api2}/v1/batches/${id}/events`, 90_000).catch((err: Error) => {
        throw withOutput(err);
      });
      const { activities } = await assertEveryItemOnce(id, n);

      const itemEvents = events.filter((e) => e.event.startsWith('item.'));
      assert.deepEqual(
        itemEvents.map((e) => e.data.index).sort((a, b) => a - b),
        indexes(n),
        "API 2's SSE stream has each item event exactly once",
      );
      for (const e of itemEvents) {
        assert.deepEqual(
          [e.event, e.data.id, e.data.result?.label],
          ['item.succeeded', `digit-${e.data.index}`, expectedLabel(e.data.index)],
          `SSE event ${e.id}`,
        );
      }
      const end = events.at(-1)!;
      assert.equal(end.event, 'batch.completed');
      assert.deepEqual(end.data.counts, allSucceeded(n), "the end event's final counts");

      // Both hosts did work, by two signals: what each process recorded (its own /metrics), and who Temporal saw
      // complete each item (the history).
      const recorded = (await Promise.all(WORKERS.map((w) => itemsRecorded(tc.metricsUrl(w))))).map(
        (count, k) => count - recordedBefore[k]!,
      );
      assert.ok(
        recorded.every((count) => count > 0),
        `each worker host recorded items: ${recorded.join(' + ')}`,
      );
      assert.equal(recorded[0]! + recorded[1]!, n, `together they recorded each item once: ${recorded.join(' + ')}`);
      const byWorker = new Map<string, number>();
      for (const a of activities.values()) byWorker.set(a.completedBy!, (byWorker.get(a.completedBy!) ?? 0) + 1);
      const identities = WORKERS.map((w) => workerIdentity(tc.process(w)));
      assert.deepEqual(
        [...byWorker.keys()].sort(),
        [...identities].sort(),
        `the history's completions come from both worker hosts and no one else: ${JSON.stringify([...byWorker])}`,
      );
      assert.deepEqual(unexpectedExits(), [], 'no process of the cluster died');
    },
  );

  /**
   * Submits a batch, and once half its items have succeeded SIGKILLs the worker host running the most of its
   * activities, while it runs items it has not recorded yet; the batch must complete on the other worker host with
   * every item once, and the items the victim was running must have run again there.
   */
  async function killWorkerMidBatch(n: number, options: Partial<BatchOptions>) {
    const { databaseUrl } = tc.cluster;
    const id = await submit(api1, n, { ...SURVIVES, ...options });
    const handle = client.workflow.getHandle(batchWorkflowId(id));
    // Which host runs which activity is not the test's to choose: eager activities go to the host holding the batch
    // workflow in its cache, so a chunked batch's few chunks in flight may all be on one host. Both hosts are frozen
    // (SIGSTOP) while the server and the store are asked what they are doing; the victim is the one running the most
    // activities of the batch, among those running items they have not recorded. The other is let go, and the victim
    // killed frozen, so what the server and the store answered is the work lost with it. Statements the hosts had
    // already sent finish in PostgreSQL meanwhile, and are waited for.
    const hostOf = new Map(WORKERS.map((w) => [workerIdentity(tc.process(w)), w]));
    let victimName: (typeof WORKERS)[number] | undefined;
    try {
      await waitForSucceeded(api2, id, n / 2);
      let freezes = 0;
      /** Why each freeze caught no victim: per host, its activities started / its items among them unrecorded. */
      const misses: string[] = [];
      const caught = await waitFor(
        `a worker host to be running items of ${id} it has not recorded`,
        async () => {
          const { status, counts } = await batch(api2, id);
          if (status !== 'running') return { ended: { status, counts } };
          for (const w of WORKERS) tc.process(w).child.kill('SIGSTOP');
          freezes++;
          let frozen: (typeof WORKERS)[number] | undefined;
          try {
            await waitFor(
              "the worker hosts' statements to finish",
              async () => {
                const active = await Promise.all(WORKERS.map((w) => activeStatements(databaseUrl, `batchline-${w}`)));
                return active.every((k) => k === 0);
              },
              5000,
              20,
            );
            const started = [...(await startedActivities(handle))];
            const activities = await itemActivities(handle);
            const stored = (await storedRows(databaseUrl, id)).results;
            const hosts = WORKERS.map((host) => {
              const mine = started.filter(([, a]) => hostOf.get(a.worker) === host);
              const running = mine
                .flatMap(([a, { attempt }]) => itemsOf(activities.get(a)!).map((index) => ({ index, attempt })))
                .filter(({ index }) => !stored.has(index));
              return { victim: host, started: mine.map(([a]) => a), running };
            });
            const [pick] = hosts
              .filter((h) => h.running.length > 0)
              .sort((x, y) => y.started.length - x.started.length);
            const startedByHost = hosts.map((h) => `${h.victim} ${h.started.length}`).join(', ');
            if (!pick) {
              misses.push(hosts.map((h) => `${h.victim} ${h.started.length}/${h.running.length}`).join(', '));
              return undefined;
            }
            frozen = pick.victim;
            victimName = pick.victim;
            return { ...pick, startedByHost, counts, freezes };
          } finally {
            for (const w of WORKERS) if (w !== frozen) tc.process(w).child.kill('SIGCONT');
          }
        },
        60_000,
        50,
      ).catch((err: Error) => {
        throw withOutput(err);
      });
      if (caught.ended) {
        throw withOutput(
          new Error(
            `batch ${id} ended (${caught.ended.status}, ${JSON.stringify(caught.ended.counts)}) before either ` +
              `worker host was caught running items of it that it had not recorded; ${freezes} freezes, each ` +
              `host's activities started / items unrecorded at each: ${misses.join('; ')}`,
          ),
        );
      }
      const victim = tc.process(caught.victim);
      const victimId = workerIdentity(victim);
      const survivorId = workerIdentity(tc.process(WORKERS.find((w) => w !== caught.victim)!));
      killed.add(victim.child.pid!);
      victim.child.kill('SIGKILL');
      assert.equal(await exitOf(victim.child), null, 'killed by a signal, not exited');
      const killedAtMs = Date.now();
      assert.ok(caught.counts.succeeded < n, `the batch ended before the kill: ${JSON.stringify(caught.counts)}`);

      // A statement the victim had written to its socket but its backend had not yet read looked idle while it was
      // frozen, and may have recorded items since. Once its backends are gone nothing it sent can commit: the store
      // then holds all it will ever have recorded. (Milliseconds; the other host's retries come a second or more
      // after its attempts time out.) Items recorded meanwhile were not lost with it.
      await waitFor(
        `${caught.victim}'s PostgreSQL backends to end`,
        async () => (await backends(databaseUrl, `batchline-${caught.victim}`)) === 0,
        10_000,
        10,
      ).catch((err: Error) => {
        throw withOutput(err);
      });
      const storedAfterKill = (await storedRows(databaseUrl, id)).results;
      const recordedLate = caught.running.filter(({ index }) => storedAfterKill.has(index));
      const running = caught.running.filter(({ index }) => !storedAfterKill.has(index));
      assert.ok(
        running.length > 0,
        `the victim died running items it had not recorded (it recorded all ${recordedLate.length} after the freeze)`,
      );

      await waitForStatus(api2, id, 'completed');
      const { results, items: itemViews, activities } = await assertEveryItemOnce(id, n);

      // What the victim had started and never finished. (One whose completion was already on its way to the server
      // when it froze was finished by it: that completion carries its identity.)
      const lost = caught.started.map((a) => activities.get(a)!).filter((a) => a.completedBy !== victimId);
      assert.ok(lost.length > 0, 'the victim died with activities unfinished');
      for (const a of lost) {
        const what = `${a.type} of items ${a.start}..${a.start + a.count - 1} (running at the kill)`;
        assert.ok(a.attempt >= 2, `${what}: attempted again, last attempt ${a.attempt}`);
        assert.equal(a.retriedAfter, 'timeout', `${what}: retried because the dead host's attempt timed out`);
        assert.equal(a.completedBy, survivorId, `${what}: completed by the other worker host`);
        assert.ok(
          a.completedAtMs! > killedAtMs,
          `${what}: completed after the kill (${a.completedAtMs! - killedAtMs} ms after it)`,
        );
      }
      for (const { index: i } of running) {
        assert.ok(
          results.get(i)!.attempts >= 2,
          `item ${i} (running unrecorded at the kill): results count 2 attempts`,
        );
        assert.ok(itemViews.get(i)!.attempts >= 2, `item ${i} (running unrecorded at the kill): the items view too`);
      }
      // The items left out above were recorded by the victim's own attempt, not by a retry on the other host.
      for (const { index: i, attempt } of recordedLate) {
        assert.equal(results.get(i)!.attempts, attempt, `item ${i} (recorded by the victim after the freeze)`);
      }
      // After the kill, only the other host completed anything.
      const afterKill = [...activities.values()].filter((a) => a.scheduledAtMs > killedAtMs);
      assert.deepEqual(
        afterKill.filter((a) => a.completedBy !== survivorId).map((a) => `${a.activityId} ${a.completedBy}`),
        [],
        'every activity scheduled after the kill was completed by the other worker host',
      );
      assert.deepEqual(unexpectedExits(), [], 'no other process of the cluster died');
      return { ...caught, lost, running, recordedLate };
    } finally {
      // The next test runs on both hosts again.
      if (victimName) {
        const victim = tc.process(victimName);
        if (victim.child.signalCode !== null || victim.child.exitCode !== null) {
          victim.restart();
          await waitForPolling(victimName);
        } else {
          victim.child.kill('SIGCONT');
        }
      }
    }
  }

  /** What a kill test reports: who was killed, at what point, and what was lost with it. */
  const killReport = (n: number, unit: string, r: Awaited<ReturnType<typeof killWorkerMidBatch>>) =>
    `killed ${r.victim} (activities started: ${r.startedByHost}) at ` +
    `${r.counts.succeeded}/${n} succeeded (freeze ${r.freezes}); ${r.lost.length} ${unit} lost, ` +
    `${r.running.length} items unrecorded, ${r.recordedLate.length} recorded by it after the freeze`;

  test(
    'a worker host SIGKILLed at half of a per-item batch: the other completes it, no item lost or recorded twice, ' +
      'and the items it was running ran a second attempt',
    { timeout: 150_000 },
    async (t) => {
      t.diagnostic(killReport(600, 'activities', await killWorkerMidBatch(600, { concurrency: 32 })));
    },
  );

  test(
    'a worker host SIGKILLed at half of a chunked batch (itemsPerActivity 10): the other completes it, no item ' +
      'lost or recorded twice, and the items it was running ran a second attempt',
    { timeout: 150_000 },
    async (t) => {
      t.diagnostic(
        killReport(1000, 'chunks', await killWorkerMidBatch(1000, { concurrency: 40, itemsPerActivity: 10 })),
      );
    },
  );

  test('the Temporal server restarted mid-batch: the batch completes, nothing lost', { timeout: 150_000 }, async () => {
    const n = 400;
    const id = await submit(api1, n, { ...SURVIVES, concurrency: 8 });
    const atRestart = await waitForSucceeded(api2, id, n / 4);
    const before = tc.cluster.temporal.child.pid;
    await tc.cluster.restartTemporal();
    const restartedAtMs = Date.now();
    assert.notEqual(tc.cluster.temporal.child.pid, before, 'a new Temporal server process');
    assert.ok(atRestart.counts.succeeded < n, `the batch ended before the restart: ${JSON.stringify(atRestart)}`);

    await waitForStatus(api2, id, 'completed');
    const { activities } = await assertEveryItemOnce(id, n);
    assert.ok(
      [...activities.values()].some((a) => a.scheduledAtMs > restartedAtMs),
      'items were scheduled by the restarted server',
    );
    assert.deepEqual(unexpectedExits(), [], 'no batchline process died');
  });

  test(
    "PostgreSQL restarted mid-batch (Temporal's databases and the item store): the batch completes, nothing lost",
    { timeout: 150_000 },
    async () => {
      const n = 400;
      const postmaster = () =>
        fs.readFileSync(path.join(tc.dir, 'postgres', 'data', 'postmaster.pid'), 'utf8').split('\n')[0];
      const id = await submit(api1, n, { ...SURVIVES, concurrency: 8 });
      const atRestart = await waitForSucceeded(api2, id, n / 4);
      const before = postmaster();
      await tc.cluster.postgres!.restart({ downMs: 2000 });
      const restartedAtMs = Date.now();
      assert.notEqual(postmaster(), before, 'a new PostgreSQL server process');
      assert.ok(atRestart.counts.succeeded < n, `the batch ended before the restart: ${JSON.stringify(atRestart)}`);

      await waitForStatus(api2, id, 'completed');
      const { activities } = await assertEveryItemOnce(id, n);
      assert.ok(
        [...activities.values()].some((a) => a.scheduledAtMs > restartedAtMs),
        'items were scheduled after PostgreSQL was back',
      );
      assert.equal(tc.cluster.temporal.child.exitCode, null, 'the Temporal server rode out the restart');
      assert.deepEqual(unexpectedExits(), [], 'no batchline process died');
    },
  );

  test(
    'GET /v1/batches?status=running and `temporal workflow list --query "BatchStatus=\'Running\'"` agree, before ' +
      'and after the batches end',
    { timeout: 120_000 },
    async () => {
      const { address } = tc.cluster.temporal;
      const cli = (status: string) =>
        temporalWorkflowList(address, tc.namespace, `BatchStatus='${status}'`).then((ids) =>
          ids.map((w) => w.replace(/^batch-/, '')),
        );
      const api = async (status: string) => {
        const res = await http(api2, 'GET', `/v1/batches?status=${status}&limit=100`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.nextCursor, undefined, 'one page holds them all');
        return (res.body.batches as { id: string }[]).map((b) => b.id).sort();
      };
      // Two batches held running: one item at a time, paused as soon as they start.
      const held = [await submit(api1, 200, { concurrency: 1 }), await submit(api1, 200, { concurrency: 1 })].sort();
      for (const id of held) {
        const res = await http(api1, 'POST', `/v1/batches/${id}/pause`);
        assert.equal(res.status, 202, JSON.stringify(res.body));
      }
      await waitFor('the CLI to list both held batches as running', async () => {
        const ids = await cli('Running');
        return held.every((id) => ids.includes(id));
      });
      const earlier = submitted.filter((id) => !held.includes(id)).sort();
      assert.deepEqual(await cli('Running'), held, 'the CLI lists exactly the held batches as running');
      assert.deepEqual(await api('running'), held, 'the API lists exactly the same');
      assert.deepEqual(await cli('Completed'), earlier, "the CLI: every earlier test's batch completed");
      assert.deepEqual(await api('completed'), earlier, 'the API: the same');

      for (const id of held) {
        const res = await http(api2, 'POST', `/v1/batches/${id}/resume`);
        assert.equal(res.status, 202, JSON.stringify(res.body));
      }
      for (const id of held) await waitForStatus(api2, id, 'completed');
      await waitFor('the CLI to list the held batches as completed', async () => {
        const ids = await cli('Completed');
        return held.every((id) => ids.includes(id));
      });
      const all = [...submitted].sort();
      assert.deepEqual(await cli('Running'), [], 'the CLI lists no batch running');
      assert.deepEqual(await api('running'), [], 'nor does the API');
      assert.deepEqual(await cli('Completed'), all, 'the CLI lists every batch completed');
      assert.deepEqual(await api('completed'), all, 'and so does the API');
    },
  );
});

/** A process's scheduling niceness: field 19 of /proc/<pid>/stat (the command name before it may hold spaces). */
function niceness(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3]);
}

describe('batchline cluster, the command', () => {
  test(
    'starts PostgreSQL, the Temporal server and its UI, a batch worker at the nice of its CPU weight, the ' +
      'interactive worker and an API; SIGINT stops every one of them',
    { timeout: 180_000 },
    async () => {
      const dataDir = clusterDataDir('cluster-command');
      const [apiPort, temporalPort, uiPort, metricsPort] = [
        await freePortRun(1),
        await freePortRun(1),
        await freePortRun(1),
        await freePortRun(2),
      ];
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        ...batchlineFromSource.env,
        PORT: String(apiPort),
        TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
        TEMPORAL_UI_PORT: String(uiPort),
        WORKER_METRICS_PORT: String(metricsPort),
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
      };
      delete env.DATABASE_URL; // a local PostgreSQL
      const [command, ...args] = batchlineFromSource.command;
      const cli = spawn(command!, [...args, 'cluster', '--workers', '1', '--apis', '1'], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      cli.stdout.on('data', (b: Buffer) => (output += b.toString()));
      cli.stderr.on('data', (b: Buffer) => (output += b.toString()));
      const exited = exitOf(cli);
      let started: ProcessEntry[] = [];
      try {
        await Promise.race([
          // The banner's last line: its lines are written one by one, and the test reads them all.
          waitFor('the banner', () => output.includes('Press Ctrl-C to stop.'), 150_000, 200),
          exited.then((code) => {
            throw new Error(`batchline cluster exited with ${code} before its banner`);
          }),
        ]).catch((err: Error) => {
          throw new Error(`${err.message}\n${output}`);
        });
        const api = `http://127.0.0.1:${apiPort}`;
        assert.match(output, new RegExp(`API 1\\s+${api}`));
        const health = await http(api, 'GET', '/healthz');
        assert.deepEqual([health.status, health.body], [200, { status: 'ok' }], 'the API answers /healthz');
        const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
        assert.equal(ui.status, 200, 'the Temporal UI answers');

        // What it started, from its own lines and from the process table.
        const printed = [...output.matchAll(/^\[cluster\]\s+(worker-1|interactive|api-1)\s+pid (\d+)\s/gm)].map(
          (m) => ({ name: m[1]!, pid: Number(m[2]) }),
        );
        assert.deepEqual(
          printed.map((p) => p.name),
          ['worker-1', 'interactive', 'api-1'],
          output,
        );
        // Each at the nice of its role's CPU weight: the batch worker below the online path. A worker lowers itself
        // as it starts, which may come after the API answers.
        const expectedNice = {
          'worker-1': niceForWeight(ROLES.worker.cpuWeight),
          interactive: niceForWeight(ROLES.interactive.cpuWeight),
          'api-1': 0,
        };
        assert.ok(expectedNice['worker-1'] > expectedNice.interactive, 'the role table ranks the batch worker lower');
        const nices = () => Object.fromEntries(printed.map((p) => [p.name, niceness(p.pid)]));
        await waitFor('the batch worker to lower its priority', () => nices()['worker-1'] !== 0, 30_000, 100).catch(
          () => undefined,
        );
        assert.deepEqual(nices(), expectedNice, 'each process at the nice of its CPU weight');

        started = processesOf(dataDir, cli.pid);
        const pids = new Set(started.map((p) => p.pid));
        for (const p of printed) assert.ok(pids.has(p.pid), `${p.name} (pid ${p.pid}) runs under the command`);
        const expectKind = (what: string, pattern: RegExp) =>
          assert.ok(
            started.some((p) => pattern.test(p.cmd)),
            `${what} among its processes: ${started.map((p) => p.cmd).join('; ')}`,
          );
        expectKind('the Temporal server', /temporal-server .*\bstart$/);
        expectKind('the Temporal UI', /temporal-ui-server .*\bstart$/);
        expectKind('PostgreSQL', new RegExp(`postgres -D ${dataDir}`));

        cli.kill('SIGINT');
        const code = await exited;
        // tsx's esbuild helper exits when its parent's pipe closes: a moment after its parent.
        const left = await waitFor(
          'every process it started to be gone',
          () => started.every((p) => !stillRunning(p)),
          15_000,
          200,
        ).then(
          () => [],
          () => started.filter(stillRunning),
        );
        assert.deepEqual(
          left.map((p) => `${p.pid} ${p.cmd}`),
          [],
          `SIGINT left processes running\n${output}`,
        );
        assert.deepEqual(
          processesOf(dataDir).map((p) => `${p.pid} ${p.cmd}`),
          [],
          'no process runs in its data directory or was given it',
        );
        assert.equal(code, 0, `exit code after SIGINT\n${output}`);
      } finally {
        // A failed assertion must not leave its processes behind.
        for (const p of [...started, ...processesOf(dataDir, cli.pid)].filter(stillRunning)) {
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
        cli.kill('SIGKILL');
        await exited;
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    },
  );
});
