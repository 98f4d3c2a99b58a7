// The batches API over HTTP against the real stack (dev server, worker, ONNX models, API with two tenants):
// NDJSON streaming submit, results, SSE resumed across an API restart, listing, items, steering, idempotency,
// tenants, readiness and metrics.
import assert from 'node:assert/strict';
import httpServer from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { Webhook } from 'standardwebhooks';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import type { Config } from '../../src/config.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { ISOLATE_EXECUTION_TIMEOUT_MS, startWorker, type StartedWorker } from '../../src/worker.js';
import { heldout, http } from '../helpers/data.js';
import { readSse, type SseEvent } from '../helpers/sse.js';
import { ITEM_WORKFLOW_TASK_TIMEOUT_MS } from '../../workflows/workflow-task-timeout.js';
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

const ACME = 'key-aaaaaaaaaaaaaaaa';
const GLOBEX = 'key-bbbbbbbbbbbbbbbb';
const asAcme = { authorization: `Bearer ${ACME}` };
const asGlobex = { authorization: `Bearer ${GLOBEX}` };
const rows = heldout('digits');

describe('batches API over HTTP on the real stack', () => {
  let temporal: TestTemporal;
  let config: Config;
  let worker: StartedWorker;
  let api: StartedServer;

  before(async () => {
    quietTemporalLogs();
    temporal = await startTestTemporal();
    config = testConfig(temporal.address, {
      API_KEYS: `${ACME}=acme,${GLOBEX}=globex`,
      MAX_BATCH_ITEMS: '5000',
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', // the test's receiver; the default refusal is in bad-requests.test.ts
    });
    worker = await startWorker(config, testLog, { workflowBundle: await workflowBundle() });
    api = await startServer(config, testLog);
  });

  after(async () => {
    await api?.close();
    await worker?.shutdown();
    await temporal?.stop();
  });

  const get = (route: string, headers: Record<string, string> = asAcme) =>
    http(api.url, 'GET', route, undefined, headers);
  const post = (route: string, body?: unknown, headers: Record<string, string> = asAcme) =>
    http(api.url, 'POST', route, body ?? {}, headers);
  const submit = async (n: number, options: Record<string, unknown> = {}, headers = asAcme) => {
    const res = await post(
      '/v1/batches',
      { model: 'digits', items: rows.slice(0, n).map((r, i) => ({ id: `r${i}`, inputs: r.inputs })), options },
      headers,
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const completed = (id: string, headers = asAcme) =>
    waitFor(`batch ${id} to end`, async () => {
      const res = await get(`/v1/batches/${id}`, headers);
      return res.body.status !== 'running' ? res.body : undefined;
    });

  test("the workers give one workflow activation minutes, not the SDK's 5 s: a starved worker is not taken for a deadlock", () => {
    // The SDK honours isolateExecutionTimeout though its options type does not list it: this fails if it stops.
    assert.ok(worker.workers.length > 0);
    for (const w of worker.workers) assert.equal(w.options.isolateExecutionTimeoutMs, ISOLATE_EXECUTION_TIMEOUT_MS);
  });

  test('an NDJSON body is streamed into a batch; /results streams every outcome once, with scikit-learn’s label', async () => {
    const n = 1200; // more than one store append (500) and more than the held-out rows (cycled)
    const body =
      Array.from({ length: n }, (_, i) =>
        JSON.stringify({ id: `line-${i}`, inputs: rows[i % rows.length]!.inputs }),
      ).join('\n') + '\n';
    const res = await fetch(`${api.url}/v1/batches?model=digits&itemsPerActivity=20&concurrency=8`, {
      method: 'POST',
      headers: { ...asAcme, 'content-type': 'application/x-ndjson' },
      body,
    });
    const created = (await res.json()) as any;
    assert.equal(res.status, 202, JSON.stringify(created));
    assert.equal(created.total, n);
    assert.deepEqual(created.counts, { pending: n, running: 0, succeeded: 0, failed: 0, canceled: 0 });
    const id = created.id as string;
    assert.deepEqual(created.links, {
      self: `/v1/batches/${id}`,
      items: `/v1/batches/${id}/items`,
      results: `/v1/batches/${id}/results`,
      events: `/v1/batches/${id}/events`,
    });
    assert.equal(res.headers.get('location'), `/v1/batches/${id}`);

    // follow=true streams outcomes as they are recorded and ends when the batch ends.
    const follow = await fetch(`${api.url}/v1/batches/${id}/results?follow=true`, { headers: asAcme });
    assert.equal(follow.status, 200);
    assert.match(follow.headers.get('content-type') ?? '', /application\/x-ndjson/);
    const lines = (await follow.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, n, 'one line per item');
    assert.equal(new Set(lines.map((l) => l.index)).size, n, 'no item twice');
    for (const l of lines) {
      assert.equal(l.status, 'succeeded');
      assert.equal(l.id, `line-${l.index}`);
      assert.equal(l.result.label, rows[l.index % rows.length]!.expected.labelName, `line ${l.index}`);
    }
    const batch = await completed(id);
    assert.equal(batch.status, 'completed');
    assert.equal(batch.counts.succeeded, n);

    // Without follow: every finished item once, in index order.
    const all = (await (await fetch(`${api.url}/v1/batches/${id}/results`, { headers: asAcme })).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      all.map((l) => l.index),
      Array.from({ length: n }, (_, i) => i),
    );
  });

  test('itemActivities=local (an NDJSON query parameter): every label right, each item a marker in history, no activity task', async () => {
    const n = 300;
    const body = Array.from({ length: n }, (_, i) => JSON.stringify({ inputs: rows[i % rows.length]!.inputs })).join(
      '\n',
    );
    const res = await fetch(`${api.url}/v1/batches?model=digits&itemActivities=local&concurrency=16`, {
      method: 'POST',
      headers: { ...asAcme, 'content-type': 'application/x-ndjson' },
      body,
    });
    const created = (await res.json()) as any;
    assert.equal(res.status, 202, JSON.stringify(created));
    const batch = await completed(created.id);
    assert.equal(batch.status, 'completed');
    assert.equal(batch.counts.succeeded, n);
    const results = (await (await fetch(`${api.url}/v1/batches/${created.id}/results`, { headers: asAcme })).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.equal(results.length, n);
    for (const r of results)
      assert.equal(r.result.label, rows[r.index % rows.length]!.expected.labelName, `item ${r.index}`);

    const connection = await connectTemporal(temporal.address);
    try {
      const handle = new Client({ connection }).workflow.getHandle(batchWorkflowId(created.id));
      const events = (await handle.fetchHistory()).events!;
      assert.equal(
        events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length,
        n,
        'one local activity marker per item',
      );
      assert.deepEqual(
        events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []),
        ['recordBatchEnd'],
        'no item went through the task queue (only the last step, which records the batch end)',
      );
      const timeout = events[0]!.workflowExecutionStartedEventAttributes?.workflowTaskTimeout;
      assert.equal(Number(timeout?.seconds) * 1000, ITEM_WORKFLOW_TASK_TIMEOUT_MS, "the batch's workflow task timeout");
    } finally {
      await connection.close();
    }
  });

  test('SSE resumes with Last-Event-ID across an API restart: every item event once, in order, then the end', async () => {
    const n = 150;
    const id = await submit(n, { concurrency: 2 });
    const seen: SseEvent[] = [];
    const stop = new AbortController();
    for await (const e of readSse(`${api.url}/v1/batches/${id}/events`, { headers: asAcme, signal: stop.signal })) {
      seen.push(e);
      if (seen.filter((s) => s.event.startsWith('item.')).length >= 25) break;
    }
    stop.abort();
    const lastId = seen.filter((e) => e.id !== undefined).at(-1)!.id!;

    // The API goes away mid-batch and a new process takes over on another port; the event log is in the store.
    await api.close();
    api = await startServer(config, testLog);
    for await (const e of readSse(`${api.url}/v1/batches/${id}/events`, { headers: asAcme, lastEventId: lastId }))
      seen.push(e);

    const items = seen.filter((e) => e.event.startsWith('item.'));
    assert.deepEqual(
      items.map((e) => e.data.index).sort((a, b) => a - b),
      Array.from({ length: n }, (_, i) => i),
      'every item exactly once: no gap, no duplicate',
    );
    const ids = items.map((e) => Number(e.id));
    assert.ok(
      ids.every((v, i) => i === 0 || v > ids[i - 1]!),
      'event ids increase',
    );
    for (const e of items) {
      assert.equal(e.event, 'item.succeeded');
      assert.equal(e.data.result.label, rows[e.data.index]!.expected.labelName);
    }
    const end = seen.at(-1)!;
    assert.equal(end.event, 'batch.completed');
    assert.equal(end.id, 'end');
    assert.equal(end.data.counts.succeeded, n);
    assert.ok(
      seen.some((e) => e.event === 'batch.progress' && e.data.total === n),
      'throttled progress events',
    );
    // After the end there is nothing more: 204 tells EventSource to stop reconnecting.
    const again = await fetch(`${api.url}/v1/batches/${id}/events`, { headers: { ...asAcme, 'last-event-id': 'end' } });
    assert.equal(again.status, 204);
  });

  test('SSE with items=false: progress that only rises, no item events, then the end; another tenant gets 404', async () => {
    const n = 120;
    const id = await submit(n, { concurrency: 2 });
    const seen: SseEvent[] = [];
    for await (const e of readSse(`${api.url}/v1/batches/${id}/events?items=false`, { headers: asAcme })) seen.push(e);
    assert.deepEqual(
      [...new Set(seen.map((e) => e.event))],
      ['batch.progress', 'batch.completed'],
      'progress, then the end, nothing else',
    );
    const progress = seen.filter((e) => e.event === 'batch.progress');
    assert.ok(progress.length >= 1, 'at least one progress event while it ran');
    assert.ok(
      progress.every((e) => e.id === undefined && e.data.total === n),
      'progress events carry the batch, and no id',
    );
    const done = progress.map((e) => e.data.counts.succeeded as number);
    assert.ok(
      done.every((v, i) => i === 0 || v >= done[i - 1]!),
      `succeeded never goes back: ${done.join(',')}`,
    );
    const end = seen.at(-1)!;
    assert.equal(end.id, 'end');
    assert.equal(end.data.counts.succeeded, n);
    const other = await fetch(`${api.url}/v1/batches/${id}/events?items=false`, { headers: asGlobex });
    assert.equal(other.status, 404);
    await other.body?.cancel();
  });

  test('list, read, items and one item; another tenant sees none of it', async () => {
    const id = await submit(30);
    await completed(id);
    const batch = await get(`/v1/batches/${id}`);
    assert.equal(batch.status, 200);
    assert.equal(batch.body.counts.succeeded, 30);
    assert.equal(batch.body.links.results, `/v1/batches/${id}/results`);

    const page1 = await get(`/v1/batches/${id}/items?limit=10`);
    assert.equal(page1.body.items.length, 10);
    assert.equal(page1.body.nextCursor, 10);
    const page2 = await get(`/v1/batches/${id}/items?limit=50&cursor=${page1.body.nextCursor}`);
    assert.deepEqual(
      page2.body.items.map((i: any) => i.index),
      Array.from({ length: 20 }, (_, i) => i + 10),
    );
    const succeeded = await get(`/v1/batches/${id}/items?status=succeeded&limit=1000`);
    assert.equal(succeeded.body.items.length, 30);
    assert.equal((await get(`/v1/batches/${id}/items?status=failed`)).body.items.length, 0);
    const one = await get(`/v1/batches/${id}/items/r7`);
    assert.equal(one.status, 200);
    assert.equal(one.body.index, 7);
    assert.equal(one.body.result.label, rows[7]!.expected.labelName);
    assert.deepEqual(one.body.inputs, rows[7]!.inputs, 'one item comes with its inputs');
    assert.equal((await get(`/v1/batches/${id}/items/nope`)).status, 404);

    const listed = await waitFor('the batch in the completed list', async () => {
      const res = await get('/v1/batches?status=completed&model=digits&limit=100');
      return res.body.batches?.find((b: any) => b.id === id);
    });
    assert.equal(listed.total, 30);
    assert.equal(listed.status, 'completed');
    // Cursor pagination walks distinct batches.
    const a = await get('/v1/batches?limit=1');
    assert.equal(a.body.batches.length, 1);
    assert.ok(a.body.nextCursor, 'a next page');
    const b = await get(`/v1/batches?limit=1&cursor=${a.body.nextCursor}`);
    assert.notEqual(b.body.batches[0].id, a.body.batches[0].id);

    for (const route of [
      `/v1/batches/${id}`,
      `/v1/batches/${id}/items`,
      `/v1/batches/${id}/items/r7`,
      `/v1/batches/${id}/results`,
      `/v1/batches/${id}/events`,
    ]) {
      const res = await get(route, asGlobex);
      assert.equal(res.status, 404, route);
      assert.equal(res.body.error.code, 'not_found');
    }
    assert.equal((await post(`/v1/batches/${id}/cancel`, {}, asGlobex)).status, 404);
    const theirs = await get('/v1/batches?limit=100', asGlobex);
    assert.ok(!theirs.body.batches.some((x: any) => x.id === id), 'not in the other tenant’s list');
    assert.equal((await get(`/v1/batches/${id}`, {})).status, 401);
  });

  test('pause, resume and cancel steer a running batch; an ended batch answers 409', async () => {
    const n = 400;
    const id = await submit(n, { concurrency: 1 });
    assert.equal((await post(`/v1/batches/${id}/pause`)).status, 202);
    const paused = await waitFor('paused', async () =>
      (await get(`/v1/batches/${id}`)).body.paused ? (await get(`/v1/batches/${id}`)).body : undefined,
    );
    const frozen = paused.counts.succeeded;
    assert.ok(frozen < n);
    assert.equal((await post(`/v1/batches/${id}/resume`)).status, 202);
    await waitFor(
      'progress after resume',
      async () => (await get(`/v1/batches/${id}`)).body.counts.succeeded > frozen + 1,
    );
    assert.equal((await post(`/v1/batches/${id}/cancel`)).status, 202);
    const ended = await completed(id);
    assert.equal(ended.status, 'canceled');
    assert.ok(ended.counts.canceled > 0);
    // The workflow reports its end a moment before its last step records it in the store, which steering consults.
    await waitFor('the end recorded', async () => (await post(`/v1/batches/${id}/pause`)).status === 409);
    for (const action of ['pause', 'resume', 'cancel', 'retry-failed']) {
      const res = await post(`/v1/batches/${id}/${action}`);
      assert.equal(res.status, 409, action);
      assert.equal(res.body.error.code, 'conflict');
    }
  });

  test('Idempotency-Key: the same request replays the original 202, another body is 422, keys are per API key', async () => {
    const body = { model: 'digits', items: rows.slice(0, 5).map((r) => ({ inputs: r.inputs })) };
    const key = { 'idempotency-key': `k-${Date.now()}` };
    const first = await post('/v1/batches', body, { ...asAcme, ...key });
    assert.equal(first.status, 202);
    const replay = await post('/v1/batches', body, { ...asAcme, ...key });
    assert.equal(replay.status, 202);
    assert.equal(replay.body.id, first.body.id, 'the same batch, not a new one');
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    const other = await post('/v1/batches', { ...body, items: body.items.slice(0, 4) }, { ...asAcme, ...key });
    assert.equal(other.status, 422);
    assert.equal(other.body.error.code, 'unprocessable');
    const otherTenant = await post('/v1/batches', body, { ...asGlobex, ...key });
    assert.equal(otherTenant.status, 202);
    assert.notEqual(otherTenant.body.id, first.body.id, 'a key is scoped to its API key');
    await completed(first.body.id);
    const listed = (await get('/v1/batches?limit=100')).body.batches.filter((b: any) => b.id === first.body.id);
    assert.ok(listed.length <= 1);
    // An NDJSON body (streamed, hashed only when a key comes with it): the same bytes replay, others are 422.
    const ndjson = (lines: number, k: Record<string, string>) =>
      fetch(`${api.url}/v1/batches?model=digits`, {
        method: 'POST',
        headers: { ...asAcme, ...k, 'content-type': 'application/x-ndjson' },
        body: rows
          .slice(0, lines)
          .map((r) => JSON.stringify({ inputs: r.inputs }))
          .join('\n'),
      });
    const ndjsonKey = { 'idempotency-key': `n-${Date.now()}` };
    const streamed = await ndjson(3, ndjsonKey);
    const streamedBody = (await streamed.json()) as any;
    assert.equal(streamed.status, 202);
    const again = await ndjson(3, ndjsonKey);
    assert.equal(again.status, 202);
    assert.equal(((await again.json()) as any).id, streamedBody.id);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const changed = await ndjson(2, ndjsonKey);
    assert.equal(changed.status, 422);
    await changed.body?.cancel();
    await completed(streamedBody.id);
  });

  test('a webhook registered over HTTP: a receiver failing twice then accepting gets every event, signed and stable', async () => {
    const attempts = new Map<string, number>();
    const accepted: { id: string; type: string; data: any }[] = [];
    let secret = '';
    const receiver = httpServer.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const id = String(req.headers['webhook-id']);
        const n = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, n);
        if (n <= 2) return res.writeHead(500).end();
        try {
          const msg = new Webhook(secret).verify(body, req.headers as Record<string, string>) as {
            type: string;
            data: any;
          };
          accepted.push({ id, ...msg });
          res.writeHead(204).end();
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const res = await post('/v1/batches', {
        model: 'digits',
        items: rows.slice(0, 3).map((r) => ({ inputs: r.inputs })),
        webhook: { url },
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      secret = res.body.webhook.secret;
      assert.match(secret, /^whsec_/, 'a generated secret, shown once');
      assert.deepEqual(res.body.webhook.events, ['item', 'batch']);
      const id = res.body.id as string;
      await waitFor('every event accepted', () => accepted.length === 4, 60_000);
      assert.deepEqual(accepted.map((m) => m.type).sort(), [
        'batch.completed',
        'item.succeeded',
        'item.succeeded',
        'item.succeeded',
      ]);
      assert.equal(accepted.at(-1)!.type, 'batch.completed', 'the end comes last');
      assert.ok(
        [...attempts.values()].every((n) => n === 3),
        'each message: two failures, then accepted with the same webhook-id',
      );
      const items = accepted.filter((m) => m.type === 'item.succeeded');
      for (const m of items) assert.equal(m.data.result.label, rows[m.data.index]!.expected.labelName);
      const batch = await get(`/v1/batches/${id}`);
      assert.deepEqual(batch.body.webhook, { url, events: ['item', 'batch'], failedDeliveries: [] });
      assert.equal(JSON.stringify(batch.body).includes(secret), false, 'the secret is never shown again');
    } finally {
      receiver.close();
    }
  });

  test('readiness sees Temporal and the workers; metrics count batch predictions and finished items', async () => {
    const ready = await get('/readyz', {});
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.equal(ready.body.checks.batchWorker.ok, true);
    assert.equal(ready.body.checks.interactiveWorker.ok, true);
    assert.equal((await get('/v2/health/ready', {})).status, 200);
    const apiMetrics = await (await fetch(`${api.url}/metrics`)).text();
    const has = (text: string, metric: string, labels: string[], what: string) =>
      assert.ok(
        text
          .split('\n')
          .some((l) => l.startsWith(`${metric}{`) && labels.every((x) => l.includes(x)) && / [1-9][\d.e+]*$/.test(l)),
        `${what}: no positive ${metric} with ${labels.join(', ')}`,
      );
    has(apiMetrics, 'prediction_requests_total', ['source="batch"', 'process="api"'], 'API');
    const workerMetrics = await (await fetch(worker.metricsUrl)).text();
    has(workerMetrics, 'batch_items_finished_total', ['state="succeeded"'], 'worker');
    has(workerMetrics, 'inference_batch_size_count', ['model="digits"'], 'worker');
    has(workerMetrics, 'inference_latency_seconds_count', ['model="digits"'], 'worker');
  });
});
