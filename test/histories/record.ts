// Records the histories that test/workflow/replay.test.ts replays, from real runs on the real dev server:
//   node --import tsx test/histories/record.ts [name ...]      (no names: all of them)
// Re-record only for a deliberate, incompatible change that no running batch can meet (otherwise use patching);
// a history recorded from the old code must keep replaying.
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { BatchOptions } from '../../src/contracts/batch.js';
import {
  cancelSignal,
  failuresQuery,
  pauseSignal,
  progressQuery,
  resumeSignal,
  retryFailedUpdate,
  setConcurrencySignal,
} from '../../workflows/messages.js';
import { Behaviour, FakeModel, item } from '../helpers/fake-model.js';
import { startWorkerStack } from '../helpers/stack.js';
import { quietTemporalLogs, startTestTemporal, waitFor } from '../helpers/temporal.js';

const OUT = path.dirname(new URL(import.meta.url).pathname);

quietTemporalLogs();
const temporal = await startTestTemporal();
const model = new FakeModel();
const stack = await startWorkerStack(temporal.address, model);
const { batches } = stack;
const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });

const wanted = process.argv.slice(2);

async function record(
  name: string,
  items: ReturnType<typeof item>[],
  options: Partial<BatchOptions>,
  steer?: (id: string) => Promise<void>,
  extraWorkflows: string[] = [], // suffixes of other workflows of the batch to record too (shards)
) {
  if (wanted.length > 0 && !wanted.includes(name)) return;
  const id = await batches.submit({ model: 'digits', items, options: BatchOptions.parse(options) });
  const handle = client.workflow.getHandle(batchWorkflowId(id));
  await steer?.(id);
  await handle.result().catch(() => undefined);
  for (const suffix of ['', ...extraWorkflows]) {
    const history = await client.workflow.getHandle(`${batchWorkflowId(id)}${suffix}`).fetchHistory();
    const file = `${name}${suffix.replace(/[^a-z0-9]+/g, '-')}.json`;
    fs.writeFileSync(path.join(OUT, file), `${historyToJSON(history)}\n`); // the CLI's JSON format
    // Replays need the original workflow id: shard ids are derived from it.
    const idsFile = path.join(OUT, 'workflow-ids.json');
    const ids = fs.existsSync(idsFile) ? (JSON.parse(fs.readFileSync(idsFile, 'utf8')) as Record<string, string>) : {};
    ids[file] = `${batchWorkflowId(id)}${suffix}`;
    fs.writeFileSync(idsFile, `${JSON.stringify(ids, null, 2)}\n`);
    console.log(`recorded ${file}: ${history.events?.length} events`);
  }
}

try {
  await record('normal', [0, 1, 2, 3, 4].map((k) => item(Behaviour.ok, k)), { concurrency: 2 });

  await record(
    'retries-and-failures',
    [item(Behaviour.flaky, 10), item(Behaviour.invalid, 11), item(Behaviour.broken, 12), item(Behaviour.ok, 13)],
    { maxAttempts: 2, initialIntervalMs: 1000, concurrency: 4 },
  );

  await record(
    'messages',
    [item(Behaviour.broken, 20), item(Behaviour.block, 21), item(Behaviour.ok, 22), item(Behaviour.ok, 23)],
    { maxAttempts: 1, concurrency: 1 },
    async (id) => {
      const handle = client.workflow.getHandle(batchWorkflowId(id));
      await waitFor('the broken item to fail', async () => (await handle.query(failuresQuery, {})).items.length === 1);
      await handle.signal(setConcurrencySignal, { concurrency: 3 });
      await waitFor('the blocked item', () => model.blocked === 1);
      await handle.signal(pauseSignal);
      model.healed = true;
      await handle.executeUpdate(retryFailedUpdate);
      await handle.signal(resumeSignal);
      await waitFor('the others to finish', async () => (await handle.query(progressQuery)).counts.succeeded >= 3);
      model.release();
    },
  );

  await record(
    'canceled-by-temporal',
    [item(Behaviour.ok, 30), item(Behaviour.block, 31), item(Behaviour.block, 32), item(Behaviour.ok, 33)],
    { concurrency: 2 },
    async (id) => {
      await waitFor('two blocked', () => model.blocked === 2);
      await client.workflow.getHandle(batchWorkflowId(id)).cancel();
    },
  );
  model.release();

  await record(
    'chunked',
    [item(Behaviour.ok, 50), item(Behaviour.invalid, 51), item(Behaviour.flaky, 52), item(Behaviour.ok, 53), item(Behaviour.ok, 54)],
    { itemsPerActivity: 3, maxAttempts: 3, initialIntervalMs: 1000, concurrency: 6 },
  );

  // A parent over three shards; shard-0's latest run began from state carried across continue-as-new.
  await record(
    'sharded',
    Array.from({ length: 100 }, (_, i) => item(i === 7 ? Behaviour.invalid : Behaviour.ok, 60 + i)),
    { shardSize: 40, maxConcurrentShards: 2, eventsPerRun: 100, concurrency: 5 },
    undefined,
    ['/shard-0'],
  );

  await record(
    'canceled-by-signal',
    [item(Behaviour.ok, 40), item(Behaviour.block, 41), item(Behaviour.ok, 42)],
    { concurrency: 2 },
    async (id) => {
      await waitFor('one blocked', () => model.blocked === 1);
      await client.workflow.getHandle(batchWorkflowId(id)).signal(cancelSignal);
    },
  );
} finally {
  model.release();
  await stack.close();
  await client.connection.close();
  await temporal.stop();
}
