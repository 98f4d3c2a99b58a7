// Online predictions over HTTP against the real dev server and real models: sync and async predict, task status,
// timeouts, idempotency, tenants, and the interactive queue's reserved capacity under a saturated batch queue.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { taskWorkflowId } from '../../src/client/predict-client.js';
import {
  PredictResponse,
  PredictTimeoutResponse,
  TaskAcceptedResponse,
  TaskList,
  TaskResource,
} from '../../src/contracts/predict.js';
import { heldout } from '../helpers/data.js';
import { waitFor } from '../helpers/temporal.js';
import { countTasks, GLOBEX, HELD, startOnlineStack, type OnlineStack } from './online-stack.js';
import { HEX_ID } from '../../src/contracts/ids.js';

const rows = heldout('digits');
const heldItem = (n: number) => ({ input: [HELD, n, ...new Array(62).fill(0)] });

describe('online predictions over HTTP on a real Temporal dev server', () => {
  let s: OnlineStack;

  before(async () => {
    s = await startOnlineStack();
  });

  after(async () => {
    await s?.close();
  });

  test('sync predict answers with scikit-learn’s label and probabilities', async () => {
    const before = await s.metric('prediction_requests_total{source="sync"}');
    let taskId = '';
    for (const row of rows.slice(0, 5)) {
      const res = await s.call('POST', '/v1/predict', { model: 'digits', inputs: row.inputs });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      PredictResponse.parse(res.body); // the schema the OpenAPI document is generated from describes the answer
      assert.match(res.body.taskId, HEX_ID);
      assert.equal(res.body.status, 'succeeded');
      assert.equal(res.body.result.model, 'digits');
      assert.equal(res.body.result.version, 1);
      assert.equal(res.body.result.label, row.expected.labelName);
      res.body.result.probabilities.forEach((p: number, k: number) =>
        assert.ok(Math.abs(p - row.expected.probabilities[k]!) < 1e-4),
      );
      taskId = res.body.taskId;
    }
    assert.equal(await s.metric('prediction_requests_total{source="sync"}'), before + 5);
    const description = await s.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
    assert.equal(description.taskQueue, s.config.INTERACTIVE_TASK_QUEUE, 'tasks run on the interactive task queue');
  });

  test('async predict answers 202 at once; GET /v1/tasks/:id shows the result once it is there', async () => {
    const row = rows[7]!;
    const res = await s.call('POST', '/v1/predict/async', { model: 'digits', version: 1, inputs: row.inputs });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    TaskAcceptedResponse.parse(res.body);
    assert.equal(res.body.status, 'running');
    assert.equal(res.body.statusUrl, `/v1/tasks/${res.body.taskId}`);
    assert.equal(res.headers.get('location'), res.body.statusUrl);
    const done = await waitFor('the task to succeed', async () => {
      const task = await s.call('GET', res.body.statusUrl);
      return task.body.status === 'succeeded' ? task.body : undefined;
    });
    TaskResource.parse(done);
    assert.equal(done.taskId, res.body.taskId);
    assert.equal(done.source, 'async');
    assert.equal(done.model, 'digits');
    assert.equal(done.version, 1);
    assert.equal(done.items, 1);
    assert.equal(done.result.label, row.expected.labelName);
    assert.ok(Date.parse(done.finishedAt) >= Date.parse(done.createdAt));
  });

  test('a slow item: 504 with the task, which goes on and shows its result later; a retry waits on the same task', async () => {
    s.gate.shut();
    const timeoutsBefore = await s.metric('prediction_timeouts_total');
    const body = { model: 'digits', inputs: heldItem(1), timeoutMs: 300 };
    const headers = { 'idempotency-key': 'slow-1' };
    const started = Date.now();
    const res = await s.call('POST', '/v1/predict', body, headers);
    assert.equal(res.status, 504, JSON.stringify(res.body));
    PredictTimeoutResponse.parse(res.body);
    assert.ok(Date.now() - started < 5000, 'the 504 comes after about timeoutMs');
    assert.equal(res.body.error.code, 'timeout');
    assert.match(res.body.taskId, HEX_ID);
    assert.equal(res.body.statusUrl, `/v1/tasks/${res.body.taskId}`);
    assert.equal(await s.metric('prediction_timeouts_total'), timeoutsBefore + 1);
    assert.equal((await s.call('GET', res.body.statusUrl)).body.status, 'running');

    const retry = await s.call('POST', '/v1/predict', body, headers);
    assert.equal(retry.status, 504);
    assert.equal(retry.body.taskId, res.body.taskId, 'the retry waited on the task the first request started');
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');

    s.gate.open();
    const done = await waitFor('the slow task to finish', async () => {
      const task = await s.call('GET', res.body.statusUrl);
      return task.body.status === 'succeeded' ? task.body : undefined;
    });
    assert.equal(done.result.model, 'digits');
    assert.equal(typeof done.result.label, 'string');
    const after = await s.call('POST', '/v1/predict', body, headers);
    assert.equal(after.status, 200, 'once the task is done, the same request answers with its result');
    assert.equal(after.body.taskId, res.body.taskId);
  });

  test('idempotent replay returns the original task without a second workflow; another body is 422', async () => {
    const first = { model: 'digits', inputs: rows[10]!.inputs };
    const headers = { 'idempotency-key': 'replay-1' };
    const before = await countTasks(s.client);
    const created = await s.call('POST', '/v1/predict/async', first, headers);
    assert.equal(created.status, 202);
    assert.equal(created.headers.get('idempotent-replayed'), null);
    await waitFor('the task in visibility', async () => (await countTasks(s.client)) === before + 1);

    const replay = await s.call('POST', '/v1/predict/async', first, headers);
    assert.equal(replay.status, 202);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(replay.body, created.body);

    const conflict = await s.call('POST', '/v1/predict/async', { model: 'digits', inputs: rows[11]!.inputs }, headers);
    assert.equal(conflict.status, 422);
    assert.equal(conflict.body.error.code, 'unprocessable');

    // The key is scoped per API key: globex's use of it is its own, and creates its own task.
    const other = await s.call('POST', '/v1/predict/async', first, headers, GLOBEX);
    assert.equal(other.status, 202);
    assert.notEqual(other.body.taskId, created.body.taskId);
    // Had the replay or the conflict started a workflow, it would be visible before globex's later one.
    const total = await waitFor('globex’s task in visibility', async () => {
      const n = await countTasks(s.client);
      return n >= before + 2 ? n : undefined;
    });
    assert.equal(total, before + 2, 'exactly two workflows: acme’s original and globex’s');
  });

  test('another tenant’s task is 404, as is an unknown task', async () => {
    const created = await s.call('POST', '/v1/predict/async', { model: 'digits', inputs: rows[12]!.inputs });
    assert.equal(created.status, 202);
    const theirs = await s.call('GET', created.body.statusUrl, undefined, {}, GLOBEX);
    assert.equal(theirs.status, 404);
    assert.equal(theirs.body.error.code, 'not_found');
    assert.equal((await s.call('GET', created.body.statusUrl)).status, 200, 'its own tenant sees it');
    for (const id of ['0123456789abcdef0123', 'not-a-task']) {
      const res = await s.call('GET', `/v1/tasks/${id}`);
      assert.equal(res.status, 404, id);
      assert.equal(res.body.error.code, 'not_found');
    }
  });

  test("GET /v1/tasks lists the tenant's recent tasks newest first with their status, and no one else's", async () => {
    const globex = await s.call('POST', '/v1/predict', { model: 'digits', inputs: rows[20]!.inputs }, {}, GLOBEX);
    assert.equal(globex.status, 200);
    const sync = await s.call('POST', '/v1/predict', { model: 'digits', inputs: rows[21]!.inputs });
    assert.equal(sync.status, 200);
    const bad = await s.call('POST', '/v1/predict/async', {
      model: 'digits',
      inputs: { input: new Array(64).fill(3.4e38) },
    });
    assert.equal(bad.status, 202, JSON.stringify(bad.body));
    const listed = await waitFor('the newest tasks in the list, the async one failed', async () => {
      const res = await s.call('GET', '/v1/tasks?limit=2');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const ids = res.body.tasks.map((t: { taskId: string }) => t.taskId);
      return ids[0] === bad.body.taskId && ids[1] === sync.body.taskId && res.body.tasks[0].status !== 'running'
        ? res.body.tasks
        : undefined;
    });
    TaskList.parse({ tasks: listed });
    assert.deepEqual(
      listed.map((t: { status: string; source: string }) => [t.status, t.source]),
      [
        ['failed', 'async'],
        ['succeeded', 'sync'],
      ],
    );
    assert.ok(listed[1].finishedAt >= listed[1].createdAt);
    const theirs = await s.call('GET', '/v1/tasks?limit=100', undefined, {}, GLOBEX);
    const theirIds = theirs.body.tasks.map((t: { taskId: string }) => t.taskId);
    assert.ok(theirIds.includes(globex.body.taskId), 'globex sees its own task');
    assert.ok(!theirIds.includes(sync.body.taskId), "and not acme's");
    assert.equal((await s.call('GET', '/v1/tasks?limit=0')).status, 400);
  });

  test('bad requests are 400 with field paths, and start nothing', async () => {
    const before = await s.metric('prediction_requests_total{source="sync"}');
    const cases: [unknown, (string | number)[]][] = [
      [{ model: 'digits', inputs: { input: [1, 2, 3] } }, ['inputs', 'input']],
      [{ model: 'no-such-model', inputs: rows[0]!.inputs }, ['model']],
      [{ model: 'digits', version: 9, inputs: rows[0]!.inputs }, ['version']],
      [{ model: 'digits', inputs: rows[0]!.inputs, timeoutMs: s.config.PREDICT_MAX_TIMEOUT_MS + 1 }, ['timeoutMs']],
      [{ model: 'digits', inputs: rows[0]!.inputs, extra: 1 }, []],
    ];
    for (const [body, path] of cases) {
      const res = await s.call('POST', '/v1/predict', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error.code, 'invalid_request');
      assert.deepEqual(res.body.error.details[0].path, path, JSON.stringify(res.body));
    }
    const asyncBad = await s.call('POST', '/v1/predict/async', { model: 'digits', inputs: {} });
    assert.equal(asyncBad.status, 400);
    assert.deepEqual(asyncBad.body.error.details[0].path, ['inputs', 'input']);
    assert.equal(await s.metric('prediction_requests_total{source="sync"}'), before, 'no task was started');
  });

  test('sync predict answers promptly while blocked batch items fill every batch activity slot', async () => {
    s.gate.shut();
    const batch = await s.call('POST', '/v1/batches', {
      model: 'digits',
      items: Array.from({ length: 80 }, (_, i) => ({ inputs: heldItem(i) })),
      options: { concurrency: 80 },
    });
    assert.equal(batch.status, 202, JSON.stringify(batch.body));
    // The batch worker runs at most 64 activities at once: 64 held items mean its queue is saturated.
    await waitFor('64 batch items holding every batch slot', () => s.gate.held === 64);
    const started = Date.now();
    const res = await s.call('POST', '/v1/predict', { model: 'digits', inputs: rows[20]!.inputs, timeoutMs: 20_000 });
    const elapsed = Date.now() - started;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.result.label, rows[20]!.expected.labelName);
    assert.ok(elapsed < 3000, `answered in ${elapsed} ms`);
    assert.equal(s.gate.held, 64, 'the batch still holds every slot');
    s.gate.open();
    await waitFor('the batch to complete', async () => {
      const b = await s.call('GET', `/v1/batches/${batch.body.id}`);
      return b.body.status === 'completed';
    });
  });
});
