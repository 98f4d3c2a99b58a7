// The thin path through every layer, over HTTP, against the real dev server: submit -> workflow -> activity ->
// ONNX -> read back. Predictions are checked against scikit-learn's own for the same held-out rows.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { startWorker, type StartedWorker } from '../../src/worker.js';
import { heldout, http } from '../helpers/data.js';
import { HEX_ID } from '../../src/contracts/ids.js';
import {
  quietTemporalLogs,
  startTestTemporal,
  testConfig,
  testLog,
  waitFor,
  workflowBundle,
  type TestTemporal,
} from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

describe('batches over HTTP on a real Temporal dev server', () => {
  let temporal: TestTemporal;
  let worker: StartedWorker;
  let api: StartedServer;
  let client: Client;

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    const config = testConfig(temporal.address);
    worker = await startWorker(config, testLog, { workflowBundle: await workflowBundle() });
    api = await startServer(config, testLog);
    client = new Client({ connection: await connectTemporal(temporal.address) });
  });

  /** Every item of a batch (up to 1000), from GET /v1/batches/:id/items. */
  const itemsOf = async (id: string): Promise<any[]> => {
    const res = await http(api.url, 'GET', `/v1/batches/${id}/items?limit=1000`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items;
  };

  after(async () => {
    await api?.close();
    await worker?.shutdown();
    await client?.connection.close();
    await temporal?.stop();
  });

  test('GET /healthz answers 200 once the API is up', async () => {
    const res = await http(api.url, 'GET', '/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('a batch of digits rows completes with scikit-learn’s label for every item', async () => {
    const rows = heldout('digits').slice(0, 120);
    const submitted = await http(api.url, 'POST', '/v1/batches', {
      model: 'digits',
      items: rows.map((r, i) => ({ id: `row-${i}`, inputs: r.inputs })),
      options: { concurrency: 8 },
    });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    assert.match(submitted.body.id, HEX_ID);
    assert.equal(submitted.body.status, 'running');
    assert.equal(submitted.headers.get('location'), `/v1/batches/${submitted.body.id}`);

    const done = await waitFor('the batch to complete', async () => {
      const res = await http(api.url, 'GET', `/v1/batches/${submitted.body.id}`);
      return res.body.status === 'completed' ? res.body : undefined;
    });
    assert.deepEqual(done.counts, { pending: 0, running: 0, succeeded: rows.length, failed: 0, canceled: 0 });
    const items = await itemsOf(submitted.body.id);
    assert.equal(items.length, rows.length);
    items.forEach((item: any, i: number) => {
      assert.equal(item.id, `row-${i}`);
      assert.equal(item.status, 'succeeded');
      assert.equal(item.attempts, 1);
      assert.equal(item.result.version, 1, 'the version used is recorded with the result');
      assert.equal(item.result.label, rows[i]!.expected.labelName, `item ${i}`);
    });

    // Visible to Temporal's visibility through the project's search attributes.
    const listed = await waitFor('the batch in visibility as Completed', async () => {
      for await (const wf of client.workflow.list({ query: `BatchStatus='Completed' AND BatchModel='digits'` })) {
        if (wf.workflowId === batchWorkflowId(submitted.body.id)) return wf;
      }
      return undefined;
    });
    assert.equal(listed.type, 'batchWorkflow');
  });

  test('progress is readable while a batch runs, before it completes', async () => {
    const rows = heldout('breast-cancer').slice(0, 60);
    const submitted = await http(api.url, 'POST', '/v1/batches', {
      model: 'breast-cancer',
      items: rows.map((r) => ({ inputs: r.inputs })),
      options: { concurrency: 1 },
    });
    assert.equal(submitted.status, 202);
    const partial = await waitFor(
      'some but not all items done',
      async () => {
        const res = await http(api.url, 'GET', `/v1/batches/${submitted.body.id}`);
        const c = res.body.counts;
        return c && c.succeeded > 0 && c.succeeded < rows.length ? res.body : undefined;
      },
      60_000,
      20,
    );
    assert.equal(partial.status, 'running');
    const finished = (await itemsOf(submitted.body.id)).filter((i: any) => i.status === 'succeeded');
    assert.ok(
      finished.every((i: any) => typeof i.result.label === 'string'),
      'results readable before the batch ends',
    );
    const done = await waitFor('completion', async () => {
      const res = await http(api.url, 'GET', `/v1/batches/${submitted.body.id}`);
      return res.body.status === 'completed' ? res.body : undefined;
    });
    assert.equal(done.counts.succeeded, rows.length);
    const doneItems = await itemsOf(submitted.body.id);
    doneItems.forEach((item: any, i: number) => assert.equal(item.result.label, rows[i]!.expected.labelName));
    assert.deepEqual(
      doneItems.map((i: any) => i.id),
      rows.map((_, i) => String(i)),
      'items without an id get their index',
    );
  });

  test('cancelling the workflow stops the batch, marks the rest canceled and keeps finished results', async () => {
    const rows = heldout('digits').slice(0, 200);
    const submitted = await http(api.url, 'POST', '/v1/batches', {
      model: 'digits',
      items: rows.map((r) => ({ inputs: r.inputs })),
      options: { concurrency: 1 },
    });
    assert.equal(submitted.status, 202);
    await waitFor(
      'a few items done',
      async () => {
        const res = await http(api.url, 'GET', `/v1/batches/${submitted.body.id}`);
        return res.body.counts?.succeeded >= 3;
      },
      60_000,
      20,
    );
    await client.workflow.getHandle(batchWorkflowId(submitted.body.id)).cancel(); // = temporal workflow cancel
    const done = await waitFor('the batch to be canceled', async () => {
      const res = await http(api.url, 'GET', `/v1/batches/${submitted.body.id}`);
      return res.body.status === 'canceled' ? res.body : undefined;
    });
    assert.ok(done.counts.succeeded >= 3 && done.counts.succeeded < rows.length, JSON.stringify(done.counts));
    assert.equal(done.counts.pending + done.counts.running, 0);
    assert.equal(done.counts.succeeded + done.counts.canceled, rows.length);
    for (const item of await itemsOf(submitted.body.id)) {
      if (item.status === 'succeeded') assert.equal(item.result.label, rows[item.index]!.expected.labelName);
      else assert.equal(item.result, undefined);
    }
    // The API's status comes from the batch's recorded end, which the workflow's last step writes before the
    // execution closes (a workflow task later): the execution is CANCELLED soon after, not at the same instant.
    const handle = client.workflow.getHandle(batchWorkflowId(submitted.body.id));
    await waitFor('the execution to close', async () => (await handle.describe()).status.name !== 'RUNNING');
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
  });

  test('bad input is refused with 400 before anything is queued', async () => {
    const before = await countBatches(client);
    const res = await http(api.url, 'POST', '/v1/batches', {
      model: 'digits',
      items: [{ inputs: { input: new Array(64).fill(0) } }, { inputs: { input: [1, 2, 3] } }],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_request');
    assert.deepEqual(res.body.error.details[0].path, ['items', 1, 'inputs', 'input']);
    assert.match(res.body.error.message, /expected 64/);
    assert.equal(await countBatches(client), before, 'no workflow was started');
  });

  test('an unknown batch is 404 in the error shape', async () => {
    const res = await http(api.url, 'GET', '/v1/batches/0123456789abcdef0123');
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
  });
});

async function countBatches(client: Client): Promise<number> {
  let n = 0;
  for await (const _ of client.workflow.list({ query: `WorkflowType='batchWorkflow'` })) n++;
  return n;
}
