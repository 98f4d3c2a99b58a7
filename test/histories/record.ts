// Records the histories that test/workflow/replay.test.ts replays, from real runs on the real dev server:
//   node --import tsx test/histories/record.ts [name ...]      (no names: all of them)
// Re-record only for a deliberate, incompatible change that no running batch can meet (otherwise use patching);
// a history recorded from the old code must keep replaying.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { batchWorkflowId, type BatchOwner } from '../../src/client/batch-client.js';
import { newWebhookSecret } from '../../src/webhooks/signature.js';
import { predictWorkflow } from '../../workflows/predict-workflow.js';
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
import { connectTemporal } from '../../src/client/connection.js';

const OUT = path.dirname(new URL(import.meta.url).pathname);

quietTemporalLogs();
const temporal = await startTestTemporal();
const model = new FakeModel();
const stack = await startWorkerStack(temporal.address, model, { WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' });
const { batches } = stack;
const client = new Client({ connection: await connectTemporal(temporal.address) });

const wanted = process.argv.slice(2);

/** The chunked histories' items (keys from `key`): neighbours of a bad item and of a flaky one, in chunks of 3. */
const chunkedItems = (key: number) =>
  [Behaviour.ok, Behaviour.invalid, Behaviour.flaky, Behaviour.ok, Behaviour.ok].map((b, k) => item(b, key + k));
const CHUNKED_OPTIONS = { itemsPerActivity: 3, maxAttempts: 3, initialIntervalMs: 1000, concurrency: 6 };

async function record(
  name: string,
  items: ReturnType<typeof item>[],
  options: Partial<BatchOptions>,
  steer?: (id: string) => Promise<void>,
  extraWorkflows: string[] = [], // suffixes of other workflows of the batch to record too (shards, webhooks)
  owner?: BatchOwner,
) {
  if (wanted.length > 0 && !wanted.includes(name)) return;
  const id = await batches.submit({ model: 'digits', items, options: BatchOptions.parse(options) }, owner);
  const handle = client.workflow.getHandle(batchWorkflowId(id));
  await steer?.(id);
  await handle.result().catch(() => undefined);
  for (const suffix of ['', ...extraWorkflows]) {
    await client.workflow
      .getHandle(`${batchWorkflowId(id)}${suffix}`)
      .result()
      .catch(() => undefined);
    const history = await client.workflow.getHandle(`${batchWorkflowId(id)}${suffix}`).fetchHistory();
    save(`${name}${suffix.replace(/[^a-z0-9]+/g, '-')}.json`, `${batchWorkflowId(id)}${suffix}`, history);
  }
}

/** Writes a history in the CLI's JSON format, with its workflow id (replays need it: shard ids derive from it). */
function save(
  file: string,
  workflowId: string,
  history: Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>,
) {
  fs.writeFileSync(path.join(OUT, file), `${historyToJSON(history)}\n`);
  const idsFile = path.join(OUT, 'workflow-ids.json');
  const ids = fs.existsSync(idsFile) ? (JSON.parse(fs.readFileSync(idsFile, 'utf8')) as Record<string, string>) : {};
  ids[file] = workflowId;
  fs.writeFileSync(idsFile, `${JSON.stringify(ids, null, 2)}\n`);
  console.log(`recorded ${file}: ${history.events?.length} events`);
}

try {
  await record(
    'normal',
    [0, 1, 2, 3, 4].map((k) => item(Behaviour.ok, k)),
    { concurrency: 2 },
  );

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

  await record('chunked', chunkedItems(50), CHUNKED_OPTIONS);

  // The same, recorded since the chunk-attempts patch: chunk items count their chunk's attempt, and the flaky item's
  // solo retry carries attemptsBefore (chunked.json keeps the run before it).
  await record('chunked-attempts', chunkedItems(55), CHUNKED_OPTIONS);

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
  // Items as local activities: a success, a flaky item retried with backoff, a bad input, an item that exhausts
  // its attempts, then one cancelled by the cancel signal while blocked.
  await record(
    'local-items',
    [
      item(Behaviour.ok, 90),
      item(Behaviour.flaky, 91),
      item(Behaviour.invalid, 92),
      item(Behaviour.broken, 93),
      item(Behaviour.block, 94),
    ],
    { itemActivities: 'local', maxAttempts: 4, initialIntervalMs: 1000, concurrency: 5 },
    async (id) => {
      const handle = client.workflow.getHandle(batchWorkflowId(id));
      await waitFor('four items finished', async () => {
        const c = (await handle.query(progressQuery)).counts;
        return c.succeeded + c.failed === 4;
      });
      await handle.signal(cancelSignal);
    },
  );
  // Items as local activities in shards: progress reported to the parent by counts of finished items, delivered
  // before the shard ends (the local-reports-by-count and reports-delivered-before-end patches).
  await record(
    'local-sharded',
    Array.from({ length: 80 }, (_, i) => item(i === 5 ? Behaviour.invalid : Behaviour.ok, 200 + i)),
    { itemActivities: 'local', shardSize: 40, maxConcurrentShards: 2, concurrency: 5 },
    undefined,
    ['/shard-0'],
  );
  // An item whose only attempt times out, so its activity never records the failure: the workflow records the
  // dead letter itself through recordItemFailures (the record-dead-letters patch).
  await record('dead-letters', [item(Behaviour.block, 95), item(Behaviour.ok, 96)], {
    maxAttempts: 1,
    itemTimeoutMs: 1000,
    concurrency: 2,
  });
  model.release();

  // A window wider than its first task's ramp (FIRST_TASK_RAMP_PATCH in workflows/item-window.ts): the first eight
  // items block, so the ramp ends by its timer and the rest run while they wait.
  await record(
    'first-task-ramp',
    Array.from({ length: 20 }, (_, k) => item(k < 8 ? Behaviour.block : Behaviour.ok, 100 + k)),
    { concurrency: 16 },
    async (id) => {
      const handle = client.workflow.getHandle(batchWorkflowId(id));
      await waitFor(
        'the rest to run past the blocked',
        async () => (await handle.query(progressQuery)).counts.succeeded === 12,
      );
      model.release();
    },
  );

  // Webhook deliveries: a receiver that fails the first attempt of every message, then accepts.
  if (wanted.length === 0 || wanted.includes('webhooks')) {
    const seen = new Set<string>();
    const receiver = http.createServer((req, res) => {
      req.resume();
      const id = String(req.headers['webhook-id']);
      res.writeHead(seen.has(id) ? 204 : 500).end();
      seen.add(id);
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    try {
      await record(
        'webhooks',
        [0, 1].map((k) => item(Behaviour.ok, 70 + k)),
        { concurrency: 2 },
        undefined,
        ['/webhooks'],
        {
          tenant: 'default',
          webhook: { url, events: ['item', 'batch'], secret: newWebhookSecret() },
        },
      );
    } finally {
      receiver.close();
    }
  }

  // An online task: two items inferred together on the interactive queue, in a local activity (predict.json is
  // the same task recorded before the predict-local-activity patch, with a regular activity).
  if (wanted.length === 0 || wanted.includes('predict-local-activity')) {
    const workflowId = 'task-00000000000000000001';
    await client.workflow.execute(predictWorkflow, {
      workflowId,
      taskQueue: stack.config.INTERACTIVE_TASK_QUEUE,
      args: [
        {
          taskId: '00000000000000000001',
          model: 'digits',
          items: [item(Behaviour.ok, 80).inputs, item(Behaviour.flaky, 81).inputs],
        },
      ],
    });
    save('predict-local-activity.json', workflowId, await client.workflow.getHandle(workflowId).fetchHistory());
  }

  // Sync tasks a worker takes after their caller's deadline (a start delay beyond their budget): with `continue` it
  // runs as a regular activity at the late priority; with `cancel` it fails as DeadlineExceeded without running.
  for (const [name, onTimeout, n] of [
    ['predict-late', 'continue', 2],
    ['predict-deadline-cancel', 'cancel', 3],
  ] as const) {
    if (wanted.length > 0 && !wanted.includes(name)) continue;
    const taskId = `0000000000000000000${n}`;
    const workflowId = `task-${taskId}`;
    const handle = await client.workflow.start(predictWorkflow, {
      workflowId,
      taskQueue: stack.config.INTERACTIVE_TASK_QUEUE,
      args: [{ taskId, model: 'digits', items: [item(Behaviour.ok, 82).inputs], budgetMs: 200, onTimeout }],
      startDelay: '1 second',
    });
    await handle.result().catch(() => undefined); // `cancel` fails, as it should
    save(`${name}.json`, workflowId, await handle.fetchHistory());
  }
} finally {
  model.release();
  await stack.close();
  await client.connection.close();
  await temporal.stop();
}
