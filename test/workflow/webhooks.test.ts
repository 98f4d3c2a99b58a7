// Webhook deliveries on the real Temporal dev server, to a loopback receiver: retries with one webhook-id,
// signatures a Standard Webhooks library verifies, 410 Gone, the SSRF guard's default refusal, Retry-After,
// exhausted retries listed under the batch, and hand-over across continue-as-new. The model is a scripted fake.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { Webhook } from 'standardwebhooks';
import { tailBatchEvents } from '../../src/api/event-tail.js';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import { BatchOptions } from '../../src/contracts/batch.js';
import { DeliveryError, webhookWorkflowId, type WebhookEventKind } from '../../src/contracts/webhook.js';
import { newWebhookSecret } from '../../src/webhooks/signature.js';
import type { batchWorkflow } from '../../workflows/batch-workflow.js';
import { webhookProgressQuery, webhookWorkflow, type WebhookRunInput } from '../../workflows/webhook-workflow.js';
import { Behaviour, FakeModel, item } from '../helpers/fake-model.js';
import { startWorkerStack, type WorkerStack } from '../helpers/stack.js';
import { Receiver, type Received } from '../helpers/webhook-receiver.js';
import { quietTemporalLogs, startTestTemporal, waitFor, type TestTemporal } from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

type Stack = WorkerStack;

describe('webhook deliveries', () => {
  let temporal: TestTemporal;
  let model: FakeModel;
  let allowed: Stack; // WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8: the receiver may be reached
  let strict: Stack; // the default: no allowlist
  let receiver: Receiver;
  let client: Client;

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    model = new FakeModel();
    // A collect call waits 2 s at most (20 s by default): a quiet one asks at its end whether the batch closed
    // without recording its end (terminated), as every quiet call does with the defaults.
    allowed = await startWorkerStack(
      temporal.address,
      model,
      { WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' },
      {},
      { collectWaitMs: 2000 },
    );
    strict = await startWorkerStack(temporal.address, model, {});
    receiver = new Receiver();
    await receiver.start();
    client = new Client({ connection: await connectTemporal(temporal.address) });
  });

  after(async () => {
    model?.release();
    await allowed?.close();
    await strict?.close();
    await receiver?.stop();
    await client?.connection.close();
    await temporal?.stop();
  });

  async function submit(
    stack: Stack,
    items: ReturnType<typeof item>[],
    url: string,
    events: WebhookEventKind[] = ['item', 'batch'],
    options: Partial<BatchOptions> = {},
  ) {
    const secret = newWebhookSecret();
    const id = await stack.batches.submit(
      { model: 'digits', items, options: BatchOptions.parse(options) },
      { tenant: 'default', webhook: { url, events, secret } },
    );
    return {
      id,
      secret,
      webhooks: client.workflow.getHandle<typeof webhookWorkflow>(webhookWorkflowId(id)),
      batch: client.workflow.getHandle<typeof batchWorkflow>(batchWorkflowId(id)),
    };
  }

  /** Replaces a batch's webhook workflow (its items still blocked) by one with other settings. */
  async function restartWebhooks(stack: Stack, id: string, settings: Omit<WebhookRunInput, 'batchId'>) {
    await client.workflow.getHandle(webhookWorkflowId(id)).terminate('the test restarts it with other settings');
    return client.workflow.start(webhookWorkflow, {
      workflowId: webhookWorkflowId(id),
      taskQueue: stack.config.TASK_QUEUE,
      args: [{ batchId: id, ...settings }],
    });
  }

  const deliveriesCounted = async (stack: Stack) =>
    Object.fromEntries(
      (await stack.metrics.webhookDeliveries.get()).values.map((v) => [String(v.labels.outcome), v.value]),
    );

  test('a receiver failing twice gets every event once, retried with one webhook-id, every signature verified', async () => {
    const url = receiver.route('/flaky', (attempt) => ({ status: attempt <= 2 ? 500 : 204 }));
    const countedBefore = await deliveriesCounted(allowed);
    const { id, secret, webhooks } = await submit(
      allowed,
      [item(Behaviour.ok, 1), item(Behaviour.ok, 2), item(Behaviour.ok, 3)],
      url,
    );

    const result = await webhooks.result();

    assert.deepEqual(
      { delivered: result.delivered, failed: result.failed, gone: result.gone, end: result.end },
      {
        delivered: 4,
        failed: 0,
        gone: false,
        end: 'batch.completed',
      },
    );
    const seqs = (await allowed.store.listEvents(id, 0, 100)).filter((e) => e.kind === 'item').map((e) => e.seq);
    assert.equal(seqs.length, 3);
    const expectedIds = [...seqs.map((s) => `msg_${id}_${s}`), `msg_${id}_end`].sort();
    const requests = receiver.at('/flaky');
    const byId = new Map<string, Received[]>();
    for (const r of requests) byId.set(r.headers['webhook-id']!, [...(byId.get(r.headers['webhook-id']!) ?? []), r]);
    assert.deepEqual([...byId.keys()].sort(), expectedIds);
    const verifier = new Webhook(secret);
    for (const [msgId, attempts] of byId) {
      assert.deepEqual(
        attempts.map((a) => a.status),
        [500, 500, 204],
        `${msgId}: two failures, then accepted exactly once`,
      );
      const payloads = attempts.map((a) => verifier.verify(a.body, a.headers)); // throws unless the signature is valid
      assert.deepEqual(payloads[2], payloads[0], `${msgId}: the same message on every attempt`);
      const gaps = [attempts[1]!.at - attempts[0]!.at, attempts[2]!.at - attempts[1]!.at];
      assert.ok(
        gaps[0]! >= 900 && gaps[1]! >= 1800,
        `${msgId}: exponential backoff (1 s, 2 s), got ${gaps.join(', ')} ms`,
      );
      for (const a of attempts) {
        assert.equal(a.headers['content-type'], 'application/json');
        assert.equal(a.headers['user-agent'], 'batchline-webhooks');
      }
    }
    const accepted = requests
      .filter((r) => r.status === 204)
      .map((r) => verifier.verify(r.body, r.headers) as { type: string; data: Record<string, unknown> });
    const items = accepted.filter((m) => m.type.startsWith('item.'));
    assert.deepEqual(
      items.map((m) => m.type),
      ['item.succeeded', 'item.succeeded', 'item.succeeded'],
    );
    assert.deepEqual(items.map((m) => m.data.index).sort(), [0, 1, 2]);
    for (const m of items) {
      assert.equal(m.data.batchId, id);
      assert.equal((m.data.result as { label: string }).label, `key-${(m.data.index as number) + 1}`);
    }
    const end = accepted.find((m) => m.type === 'batch.completed')!;
    assert.equal(end.data.id, id);
    assert.equal((end.data.counts as { succeeded: number }).succeeded, 3);
    const endFirstTried = byId.get(`msg_${id}_end`)![0]!.at;
    const lastItemAccepted = Math.max(
      ...requests.filter((r) => r.status === 204 && !r.headers['webhook-id']!.endsWith('_end')).map((r) => r.at),
    );
    assert.ok(endFirstTried > lastItemAccepted, 'the end is sent after every item event was delivered');
    assert.deepEqual(await allowed.store.listFailedDeliveries(id), []);
    const progress = await webhooks.query(webhookProgressQuery);
    assert.equal(progress.delivered, 4);
    const counted = await deliveriesCounted(allowed);
    assert.equal((counted.delivered ?? 0) - (countedBefore.delivered ?? 0), 4);
    assert.equal((counted.retry ?? 0) - (countedBefore.retry ?? 0), 8);
  });

  test('410 Gone stops every further delivery and ends the webhook workflow', async () => {
    const url = receiver.route('/gone', () => ({ status: 410 }));
    const { id, webhooks, batch } = await submit(allowed, [item(Behaviour.ok, 10), item(Behaviour.block, 11)], url);

    const result = await webhooks.result(); // item 11 is still blocked: its event and the end have not happened yet

    assert.equal(result.gone, true);
    assert.equal((await webhooks.describe()).status.name, 'COMPLETED');
    await waitFor('item 11 to be blocked', () => model.blocked === 1);
    model.release();
    await batch.result();
    const [first] = await allowed.store.listEvents(id, 0, 1);
    assert.deepEqual(
      receiver.at('/gone').map((r) => r.headers['webhook-id']),
      [`msg_${id}_${first!.seq}`],
      'one request: no retry, nothing after',
    );
    assert.deepEqual(
      await allowed.store.listFailedDeliveries(id),
      [],
      'a receiver that said Gone is not a failed delivery',
    );
  });

  test('by default a loopback receiver is refused at connect time: it gets nothing, and the deliveries are listed', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const path = `/refused-${host}`;
      const url = receiver.route(path, () => ({ status: 204 }), host);
      const { id, webhooks } = await submit(strict, [item(Behaviour.ok, 20), item(Behaviour.ok, 21)], url);

      const result = await webhooks.result();

      assert.equal(receiver.at(path).length, 0, `${host}: the receiver was reached`);
      assert.deepEqual({ delivered: result.delivered, failed: result.failed }, { delivered: 0, failed: 3 });
      const failed = await strict.store.listFailedDeliveries(id);
      const seqs = (await strict.store.listEvents(id, 0, 100)).filter((e) => e.kind === 'item').map((e) => e.seq);
      assert.deepEqual(
        failed.map((f) => f.messageId).sort(),
        [...seqs.map((s) => `msg_${id}_${s}`), `msg_${id}_end`].sort(),
      );
      for (const f of failed) {
        assert.equal(f.attempts, 1, 'a refused address is not retried');
        assert.equal(f.lastError, DeliveryError.refused, 'the tenant sees the fixed phrase, not why');
      }
      assert.deepEqual(failed.map((f) => f.eventType).sort(), ['batch.completed', 'item.succeeded', 'item.succeeded']);
    }
  });

  test('Retry-After is honoured: the retry waits as long as the receiver asked', async () => {
    const url = receiver.route('/busy', (attempt) =>
      attempt === 1 ? { status: 503, headers: { 'retry-after': '3' } } : { status: 200 },
    );
    const { id, webhooks } = await submit(allowed, [item(Behaviour.ok, 30)], url, ['batch']);

    const result = await webhooks.result();

    assert.equal(result.delivered, 1);
    const requests = receiver.at('/busy');
    assert.deepEqual(
      requests.map((r) => r.headers['webhook-id']),
      [`msg_${id}_end`, `msg_${id}_end`],
      'only the end was asked for',
    );
    const wait = requests[1]!.at - requests[0]!.answeredAt;
    assert.ok(wait >= 2900, `retried ${wait} ms after a Retry-After of 3 s (the backoff alone would say 1 s)`);
  });

  test('a delivery that exhausts its attempts is listed under the batch with its last error', async () => {
    const url = receiver.route('/down', () => ({ status: 500 }));
    const { id } = await submit(allowed, [item(Behaviour.block, 40)], url, ['batch']);
    const webhooks = await restartWebhooks(allowed, id, { maxAttempts: 2 });
    await waitFor('the item to be blocked', () => model.blocked === 1);
    model.release();

    const result = await webhooks.result();

    assert.deepEqual({ delivered: result.delivered, failed: result.failed }, { delivered: 0, failed: 1 });
    assert.equal(receiver.at('/down').length, 2);
    const [failed, ...more] = await allowed.store.listFailedDeliveries(id);
    assert.equal(more.length, 0);
    assert.deepEqual(
      { ...failed, failedAt: undefined },
      {
        messageId: `msg_${id}_end`,
        eventType: 'batch.completed',
        attempts: 2,
        lastError: DeliveryError.failed,
        failedAt: undefined,
      },
    );
  });

  test('the batch records its end last in the event log, with the summary its workflow returned', async () => {
    const url = receiver.route('/ends', () => ({ status: 204 }));
    const { id, batch, webhooks } = await submit(allowed, [item(Behaviour.ok, 41), item(Behaviour.invalid, 42)], url);
    const summary = await batch.result();
    await webhooks.result();
    const log = await allowed.store.listEvents(id, 0, 100);
    assert.deepEqual(
      log.map((e) => e.kind),
      ['item', 'item', 'end'],
    );
    const end = log[2]!;
    assert.ok(end.kind === 'end' && end.seq > log[1]!.seq);
    const { failures: _failures, ...expected } = summary;
    assert.deepEqual({ status: end.status, summary: end.summary }, { status: 'completed', summary: expected });
    assert.deepEqual(await allowed.store.getEnd(id), { status: 'completed', summary: expected });
    const endMessage = receiver.at('/ends').find((r) => r.headers['webhook-id'] === `msg_${id}_end`);
    assert.equal(JSON.parse(endMessage!.body).type, 'batch.completed');
  });

  test('a terminated batch (no last step) gets its end recorded from Temporal: tails and webhooks still finish', async () => {
    const url = receiver.route('/terminated', () => ({ status: 204 }));
    const { id, batch, webhooks } = await submit(allowed, [item(Behaviour.ok, 51), item(Behaviour.block, 52)], url);
    await waitFor(
      'one success, one item blocked',
      async () => (await allowed.store.countResults(id)).succeeded === 1 && model.blocked === 1,
    );
    await batch.terminate('the test terminates it');
    assert.equal(await allowed.store.getEnd(id), undefined, 'a terminated workflow records nothing itself');

    // The webhook workflow's collection finds the batch closed and records its end: batch.failed is delivered.
    const result = await webhooks.result();
    assert.equal(result.end, 'batch.failed');
    const end = await allowed.store.getEnd(id);
    assert.equal(end?.status, 'failed');
    assert.equal(end?.summary.counts.succeeded, 1);
    const ids = receiver.at('/terminated').map((r) => r.headers['webhook-id']);
    assert.ok(ids.includes(`msg_${id}_end`), `end delivered: ${ids.join(', ')}`);

    // A tail of the log (what SSE and results?follow read) ends at the recorded end, after the one outcome.
    const steps: string[] = [];
    for await (const step of tailBatchEvents({
      store: allowed.store,
      batchId: id,
      afterSeq: 0,
      signal: AbortSignal.timeout(10_000),
    })) {
      steps.push(step.kind === 'end' ? `end:${step.end.status}` : step.kind);
      if (step.kind === 'idle') break;
    }
    assert.deepEqual(steps, ['events', 'end:failed']);
    model.release();
  });

  test('continue-as-new hands over without losing or repeating an event', async () => {
    const url = receiver.route('/many', () => ({ status: 204 }));
    // More events than the delivery window, so some wait in the queue while the history passes the limit: the
    // run must hand over before the end, whatever the timing.
    const items = Array.from({ length: 20 }, (_, k) => item(Behaviour.block, 50 + k));
    const { id } = await submit(allowed, items, url, ['item', 'batch'], { concurrency: 20 });
    const webhooks = await restartWebhooks(allowed, id, { historyLimit: 20 });
    await waitFor('every item to be running', () => model.blocked === 20);
    model.release();

    const result = await webhooks.result();

    const ids = receiver.at('/many').map((r) => r.headers['webhook-id']!);
    const seqs = (await allowed.store.listEvents(id, 0, 100)).filter((e) => e.kind === 'item').map((e) => e.seq);
    assert.equal(seqs.length, 20);
    assert.deepEqual(
      [...ids].sort(),
      [...seqs.map((s) => `msg_${id}_${s}`), `msg_${id}_end`].sort(),
      'each event exactly once',
    );
    assert.equal(ids.at(-1), `msg_${id}_end`);
    assert.equal(result.delivered, 21, 'counts carried across runs');
    const firstRun = client.workflow.getHandle(webhookWorkflowId(id), webhooks.firstExecutionRunId);
    assert.equal((await firstRun.describe()).status.name, 'CONTINUED_AS_NEW');
  });
});
