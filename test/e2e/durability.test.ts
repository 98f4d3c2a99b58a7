// Nothing is lost when a process fails: a worker killed with SIGKILL mid-batch, and the dev server restarted
// mid-batch on the same SQLite file. Both run against the real dev server binary.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
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
  quietTemporalLogs,
  spawnBatchline,
  startTestTemporal,
  testConfig,
  testLog,
  waitFor,
  workflowBundle,
  type TestTemporal,
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
 * Every item succeeded with scikit-learn's label, the item store holds one success per item, and the history
 * holds exactly one completion per item.
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
    assert.deepEqual(store.countResults(final.id), { succeeded: n, failed: 0 });
  } finally {
    store.close();
  }
  const history = await client.workflow.getHandle(batchWorkflowId(final.id)).fetchHistory();
  const completions = history.events!.filter((e) => e.activityTaskCompletedEventAttributes).length;
  assert.equal(completions, n, 'one recorded activity completion per item: no result twice, none missing');
}

describe('durability', () => {
  let temporal: TestTemporal;
  let client: Client;

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  });

  after(async () => {
    await client?.connection.close();
    await temporal?.stop();
  });

  test('a worker killed with SIGKILL mid-batch: a new worker finishes it, every result exactly once', async () => {
    const config: Config = testConfig(temporal.address);
    const api = await startServer(config, testLog);
    const n = 300;
    let first = spawnBatchline('worker', config);
    let second: typeof first | undefined;
    try {
      const id = await submit(api, n, 2);
      const atKill = await waitFor('the first worker to finish some items', async () => {
        const v = await view(api, id);
        return v.counts.succeeded >= 20 ? v : undefined;
      }, 90_000, 50);
      first.kill('SIGKILL');
      assert.equal(await exitOf(first), null, 'killed by a signal, not exited');
      // The kill really happened mid-batch.
      assert.ok(atKill.counts.succeeded < n, `batch already done at kill time: ${JSON.stringify(atKill.counts)}`);

      second = spawnBatchline('worker', config);
      const final = await waitFor('the batch to complete on the second worker', async () => {
        const v = await view(api, id);
        return v.status === 'completed' ? v : undefined;
      }, 120_000, 200).catch((err) => {
        throw new Error(`${err.message}\nsecond worker output:\n${outputOf(second!)}`);
      });
      await assertEveryResultOnce(client, config, final, n);
    } finally {
      first.kill('SIGKILL');
      second?.kill('SIGTERM');
      if (second) await exitOf(second);
      await api.close();
    }
  });

  test('the dev server restarted mid-batch (same db file): the batch completes', async () => {
    const config: Config = testConfig(temporal.address);
    const api = await startServer(config, testLog);
    const worker = await startWorker(config, testLog, { workflowBundle: await workflowBundle() });
    const n = 200;
    try {
      const id = await submit(api, n, 2);
      const atRestart = await waitFor('some items done', async () => {
        const v = await view(api, id);
        return v.counts.succeeded >= 20 ? v : undefined;
      }, 90_000, 50);
      await temporal.restart();
      assert.ok(atRestart.counts.succeeded < n, `batch already done at restart: ${JSON.stringify(atRestart.counts)}`);

      const final = await waitFor('the batch to complete after the restart', async () => {
        const v = await view(api, id);
        return v.status === 'completed' ? v : undefined;
      }, 120_000, 200);
      await assertEveryResultOnce(client, config, final, n);
    } finally {
      await worker.shutdown();
      await api.close();
    }
  });
});
