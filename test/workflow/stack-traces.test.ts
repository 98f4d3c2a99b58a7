// WORKFLOW_STACK_TRACE_LIMIT: by default the worker's workflow threads capture no stack frames (the SDK would
// capture one per workflow promise, a measured third of a per-item batch's worker CPU); set, the Web UI's Stack
// Trace tab (the built-in __stack_trace query) shows where a batch waits again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { BatchOptions } from '../../src/contracts/batch.js';
import { Behaviour, FakeModel, item } from '../helpers/fake-model.js';
import { startWorkerStack, type WorkerStack } from '../helpers/stack.js';
import { quietTemporalLogs, startTestTemporal, waitFor, type TestTemporal } from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

describe('workflow stack traces', () => {
  let temporal: TestTemporal;
  let client: Client;
  const model = new FakeModel();
  const stacks: WorkerStack[] = [];

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    client = new Client({ connection: await connectTemporal(temporal.address) });
  });

  after(async () => {
    model.release();
    for (const s of stacks) await s.close();
    await client?.connection.close();
    await temporal?.stop();
  });

  /** The __stack_trace answer of a running batch whose one item is blocked in the model. */
  const stackTraceOfRunningBatch = async (env: Record<string, string>): Promise<string> => {
    const stack = await startWorkerStack(temporal.address, model, env);
    stacks.push(stack);
    const blockedBefore = model.blocked;
    const id = await stack.batches.submit({
      model: 'digits',
      items: [item(Behaviour.block, 1)],
      options: BatchOptions.parse({}),
    });
    await waitFor('the item blocked in the model', () => model.blocked > blockedBefore);
    const handle = client.workflow.getHandle(batchWorkflowId(id));
    const trace = await handle.query<string>('__stack_trace');
    model.release();
    await handle.result();
    return trace;
  };

  test('off by default: a running batch reports no workflow frames', async () => {
    const trace = await stackTraceOfRunningBatch({});
    assert.doesNotMatch(trace, /runItems|attemptItem|batch-workflow/);
  });

  test('WORKFLOW_STACK_TRACE_LIMIT=10 shows where the batch waits', async () => {
    const trace = await stackTraceOfRunningBatch({ WORKFLOW_STACK_TRACE_LIMIT: '10' });
    assert.match(trace, /runItems|attemptItem/);
  });
});
