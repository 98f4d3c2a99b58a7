// The item store on PostgreSQL, end to end: an API process and a worker process that share only DATABASE_URL and
// the task queue (each its own DATA_DIR, the worker in another working directory) run the same batches as an
// API and worker on SQLite, with the same results, SSE events and webhooks; and PostgreSQL restarted mid-batch:
// the API answers 503 with Retry-After while it is down, and the batch completes with every item recorded once. The
// OpenAI-compatible API on PostgreSQL: a file uploaded through one API process, read and batched through another.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import OpenAI, { toFile } from 'openai';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { configToEnv, loadConfig, type Config } from '../../src/config.js';
import { webhookWorkflowId } from '../../src/contracts/webhook.js';
import { itemStoreFile } from '../../src/stores/sqlite-item-store.js';
import { heldout, http as request } from '../helpers/data.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { readSse, type SseEvent } from '../helpers/sse.js';
import { Receiver } from '../helpers/webhook-receiver.js';
import {
  exitOf,
  freePort,
  outputOf,
  quietTemporalLogs,
  ROOT,
  spawnBatchline,
  startTestTemporal,
  tempDir,
  testConfig,
  waitFor,
  type TestTemporal,
} from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

const rows = heldout('digits');
/** The items of every batch here: held-out row i % rows.length, with a client id. */
const items = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `digit-${i}`, inputs: rows[i % rows.length]!.inputs }));
const expectedLabel = (index: number) => rows[index % rows.length]!.expected.labelName;
/** What an SSE client waits before reconnecting: the `retry:` the stream opens with. */
const SSE_RETRY_MS = 2000;
/** "Within a few seconds": a PostgreSQL connection is waited for 5 s at most (src/stores/postgres.ts). */
const ANSWER_WITHIN_MS = 7000;

/** An API process and a worker process on one task queue and one item store. */
interface Stack {
  backend: 'postgres' | 'sqlite';
  url: string;
  api: ChildProcess;
  worker: ChildProcess;
  /** The API's and the worker's DATA_DIR (the same one for SQLite). */
  dataDirs: string[];
  /** The worker's working directory. */
  workerCwd: string;
  /** Both processes' recent output, for failure messages. */
  output(): string;
}

/** Sends SIGTERM, and SIGKILL if the process has not exited 10 s later. */
async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = exitOf(child);
  child.kill('SIGTERM');
  const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(kill);
}

/**
 * Follows a batch's SSE stream to its end event as EventSource does: when the stream drops, sends an `error`
 * event, or a reconnect is refused, it waits the stream's retry interval and reconnects with Last-Event-ID.
 */
async function followEvents(url: string, timeoutMs: number) {
  const events: SseEvent[] = [];
  /** Statuses of reconnects answered with something other than a stream. */
  const refused: number[] = [];
  /** Streams cut, and connections that failed, before the end event. */
  const dropped: string[] = [];
  let streamErrors = 0;
  let reconnects = 0;
  let lastEventId: string | undefined;
  const signal = AbortSignal.timeout(timeoutMs);
  for (;;) {
    try {
      for await (const e of readSse(url, { signal, ...(lastEventId ? { lastEventId } : {}) })) {
        if (e.event === 'error') {
          streamErrors++;
          break; // the server says the stream failed: reconnect
        }
        events.push(e);
        if (e.id !== undefined) lastEventId = e.id;
        if (e.id === 'end') return { events, refused, dropped, streamErrors, reconnects };
      }
    } catch (err) {
      if (signal.aborted) {
        throw new Error(`no end event within ${timeoutMs} ms (${events.length} events, ${reconnects} reconnects)`);
      }
      const status = (err as { status?: number }).status;
      if (status === undefined) dropped.push((err as Error).message);
      else refused.push(status);
    }
    reconnects++;
    await sleep(SSE_RETRY_MS, undefined, { signal }).catch(() => undefined);
  }
}

/** `GET results?follow=true` read to its close: one parsed line per outcome. */
async function followResults(url: string, id: string): Promise<any[]> {
  const res = await fetch(`${url}/v1/batches/${id}/results?follow=true`, { signal: AbortSignal.timeout(60_000) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.text())
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** `id status label` of an outcome, the form both runs are compared in (ids, seqs and timestamps left out). */
const outcomeKey = (o: { id: string; status: string; result?: { label?: string } }) =>
  `${o.id} ${o.status} ${o.result?.label}`;

const indexes = (n: number) => Array.from({ length: n }, (_, i) => i);
const allSucceeded = (n: number) => ({ pending: 0, running: 0, succeeded: n, failed: 0, canceled: 0 });

describe('the item store on PostgreSQL, API and worker as separate processes', () => {
  let temporal: TestTemporal;
  let postgres: TestPostgres;
  let databaseUrl: string;
  let client: Client;
  let receiver: Receiver;
  const stacks: Stack[] = [];
  const dirs: string[] = [];

  /**
   * Starts `batchline api` and `batchline worker` on one task queue. With a DATABASE_URL each has a DATA_DIR of its
   * own and the worker runs in an empty directory of its own: they share nothing but PostgreSQL and Temporal.
   * Without, both use the SQLite file in one DATA_DIR. Resolves when the API reports the worker polling.
   */
  async function startStack(databaseUrl?: string): Promise<Stack> {
    const apiConfig = testConfig(temporal.address, {
      PORT: String(await freePort()),
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', // the test's receiver
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    });
    dirs.push(apiConfig.DATA_DIR);
    let workerConfig: Config = apiConfig;
    let cwd = ROOT;
    if (databaseUrl) {
      workerConfig = loadConfig({ ...configToEnv(apiConfig), DATA_DIR: tempDir('worker-data') });
      cwd = tempDir('worker-cwd');
      dirs.push(workerConfig.DATA_DIR, cwd);
    }
    const api = spawnBatchline('api', apiConfig);
    const worker = spawnBatchline('worker', workerConfig, {}, { cwd });
    const stack: Stack = {
      backend: databaseUrl ? 'postgres' : 'sqlite',
      url: `http://127.0.0.1:${apiConfig.PORT}`,
      api,
      worker,
      dataDirs: [...new Set([apiConfig.DATA_DIR, workerConfig.DATA_DIR])],
      workerCwd: cwd,
      output: () => `--- api output:\n${outputOf(api)}\n--- worker output:\n${outputOf(worker)}`,
    };
    stacks.push(stack);
    const died = (child: ChildProcess, name: string) =>
      exitOf(child).then((code) => {
        throw new Error(`the ${stack.backend} ${name} exited (${code}) before it was ready\n${stack.output()}`);
      });
    const ready = waitFor(
      `the ${stack.backend} API to see its worker polling`,
      async () => (await request(stack.url, 'GET', '/readyz')).status === 200,
      90_000,
      250,
    );
    await Promise.race([ready, died(api, 'API'), died(worker, 'worker')]).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.output()}`);
    });
    return stack;
  }

  before(async () => {
    quietTemporalLogs();
    receiver = new Receiver();
    [temporal, postgres] = await Promise.all([startTestTemporal(), startPostgres(), receiver.start()]);
    databaseUrl = await postgres.createDatabase();
    client = new Client({ connection: await connectTemporal(temporal.address) });
  });

  after(async () => {
    // Every step runs even when one before it fails; the first failure is reported.
    const steps = await Promise.allSettled([
      ...stacks.flatMap((s) => [stopChild(s.api), stopChild(s.worker)]),
      client?.connection.close(),
      receiver?.stop(),
    ]);
    steps.push(...(await Promise.allSettled([postgres?.stop(), temporal?.stop()])));
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    const failed = steps.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
  });

  /**
   * Submits 200 digits rows twice on `stack` (JSON with a webhook, and NDJSON), follows each batch's SSE stream and
   * results?follow to the end, waits for the webhook deliveries to finish, checks each on its own, and returns
   * each batch's outcomes in a form another run can be compared with.
   */
  async function runScenario(stack: Stack) {
    const n = 200;
    const what = (s: string) => `${stack.backend}: ${s}`;
    const hookPath = `/${stack.backend}`;
    const json = await request(stack.url, 'POST', '/v1/batches', {
      model: 'digits',
      items: items(n),
      webhook: { url: receiver.route(hookPath, () => ({ status: 204 })) },
    });
    assert.equal(json.status, 202, what(JSON.stringify(json.body)));
    const ndjson = await fetch(`${stack.url}/v1/batches?model=digits`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: items(n)
        .map((i) => JSON.stringify(i))
        .join('\n'),
    });
    const ndjsonBody = (await ndjson.json()) as { id: string };
    assert.equal(ndjson.status, 202, what(JSON.stringify(ndjsonBody)));
    const secret = json.body.webhook.secret as string;
    const batches = { json: json.body.id as string, ndjson: ndjsonBody.id };

    const summaries: Record<string, unknown> = {};
    for (const [kind, id] of Object.entries(batches)) {
      const [sse, results] = await Promise.all([
        followEvents(`${stack.url}/v1/batches/${id}/events`, 60_000),
        followResults(stack.url, id),
      ]).catch((err: Error) => {
        throw new Error(`${what(`${kind} batch`)}: ${err.message}\n${stack.output()}`);
      });

      assert.deepEqual(
        results.map((r) => r.index).sort((a, b) => a - b),
        indexes(n),
        what(`${kind}: results?follow has one line per item`),
      );
      for (const r of results) {
        assert.deepEqual(
          [r.id, r.status, r.result?.label],
          [`digit-${r.index}`, 'succeeded', expectedLabel(r.index)],
          what(`${kind} result ${r.index}`),
        );
      }

      const itemEvents = sse.events.filter((e) => e.event.startsWith('item.'));
      assert.deepEqual(
        itemEvents.map((e) => e.data.index).sort((a, b) => a - b),
        indexes(n),
        what(`${kind}: SSE has each item event exactly once`),
      );
      const seqs = itemEvents.map((e) => Number(e.id));
      assert.ok(
        seqs.every((s, i) => Number.isInteger(s) && (i === 0 || s > seqs[i - 1]!)),
        what(`${kind}: SSE item event ids increase: ${seqs.join(',')}`),
      );
      for (const e of itemEvents) {
        assert.deepEqual(
          [e.event, e.data.id, e.data.result?.label],
          ['item.succeeded', `digit-${e.data.index}`, expectedLabel(e.data.index)],
          what(`${kind} SSE event ${e.id}`),
        );
      }
      const ends = sse.events.filter((e) => e.id === 'end' || /^batch\.(completed|failed|canceled)$/.test(e.event));
      assert.equal(ends.length, 1, what(`${kind}: one end event`));
      assert.equal(sse.events.at(-1), ends[0], what(`${kind}: the end event comes last`));
      assert.equal(ends[0]!.event, 'batch.completed');
      assert.deepEqual(ends[0]!.data.counts, allSucceeded(n), what(`${kind}: the end event's final counts`));

      const summary: Record<string, unknown> = {
        results: results.map(outcomeKey).sort(),
        sse: itemEvents.map((e) => outcomeKey(e.data)).sort(),
        end: { event: ends[0]!.event, counts: ends[0]!.data.counts },
      };

      if (kind === 'json') {
        // The batch's webhook workflow ends after its last delivery: nothing more comes after it.
        const deliveries = await client.workflow.getHandle(webhookWorkflowId(id)).result();
        assert.deepEqual(
          { delivered: deliveries.delivered, failed: deliveries.failed },
          { delivered: n + 1, failed: 0 },
          what('webhook deliveries'),
        );
        const requests = receiver.at(hookPath);
        const verifier = new Webhook(secret);
        const messages = requests.map((r) => ({
          webhookId: r.headers['webhook-id'],
          ...(verifier.verify(r.body, r.headers) as { type: string; data: any }), // throws unless validly signed
        }));
        assert.equal(new Set(messages.map((m) => m.webhookId)).size, messages.length, what('no webhook-id twice'));
        assert.deepEqual(
          messages.map((m) => m.webhookId).sort(),
          [...seqs.map((s) => `msg_${id}_${s}`), `msg_${id}_end`].sort(),
          what('one webhook per SSE item event (same event log position) and one for the end'),
        );
        const itemMessages = messages.filter((m) => m.type.startsWith('item.'));
        assert.deepEqual(
          itemMessages.map((m) => m.data.index).sort((a: number, b: number) => a - b),
          indexes(n),
          what('one item webhook per item'),
        );
        for (const m of itemMessages) {
          assert.deepEqual(
            [m.type, m.data.batchId, m.data.id, m.data.result?.label],
            ['item.succeeded', id, `digit-${m.data.index}`, expectedLabel(m.data.index)],
            what(`webhook ${m.webhookId}`),
          );
        }
        const endMessages = messages.filter((m) => !m.type.startsWith('item.'));
        assert.deepEqual(
          endMessages.map((m) => [m.type, m.data.id, m.data.counts]),
          [['batch.completed', id, allSucceeded(n)]],
          what('one batch.completed webhook with the final counts'),
        );
        summary.webhooks = itemMessages.map((m) => outcomeKey(m.data)).sort();
        summary.webhookEnd = { type: endMessages[0]!.type, counts: endMessages[0]!.data.counts };
      }
      summaries[kind] = summary;
    }
    return summaries;
  }

  test(
    'the same batches through PostgreSQL (API and worker apart) and through SQLite: every result, SSE event and ' +
      'webhook once, and both runs agree',
    { timeout: 180_000 },
    async () => {
      const [onPostgres, onSqlite] = await Promise.all([startStack(databaseUrl), startStack()]);

      const [postgresRun, sqliteRun] = await Promise.all([runScenario(onPostgres), runScenario(onSqlite)]);

      assert.deepEqual(postgresRun, sqliteRun, 'the PostgreSQL run and the SQLite run have the same outcomes');
      // The PostgreSQL processes kept nothing on disk: no SQLite file in either DATA_DIR, nothing in the worker's cwd.
      const files = (stack: Stack) => stack.dataDirs.map((dir) => fs.existsSync(itemStoreFile({ DATA_DIR: dir })));
      assert.deepEqual(files(onPostgres), [false, false], 'no SQLite item store beside PostgreSQL');
      assert.deepEqual(files(onSqlite), [true], 'the SQLite run used its file');
      assert.deepEqual(fs.readdirSync(onPostgres.workerCwd), [], "nothing written to the worker's working directory");
      // The SQLite processes are done: their CPU goes to the next test.
      await Promise.all([stopChild(onSqlite.api), stopChild(onSqlite.worker)]);
    },
  );

  test('the OpenAI SDK through PostgreSQL: an uploaded file, a batch and its output file, read by another API process', async () => {
    const stack = stacks.find((s) => s.backend === 'postgres') ?? (await startStack(databaseUrl));
    const other = await startStack(databaseUrl); // another API (and worker) on the same database
    const n = 40;
    const input = items(n)
      .map((i) =>
        JSON.stringify({
          custom_id: i.id,
          method: 'POST',
          url: '/v1/predict',
          body: { model: 'digits', inputs: i.inputs },
        }),
      )
      .join('\n');
    const sdk = (url: string) => new OpenAI({ baseURL: `${url}/openai/v1`, apiKey: 'none', maxRetries: 0 });
    const file = await sdk(stack.url).files.create({
      file: await toFile(Buffer.from(input), 'digits.jsonl'),
      purpose: 'batch',
    });
    // the second API process reads what the first stored: the file, then the batch it starts from it
    assert.equal(await (await sdk(other.url).files.content(file.id)).text(), input);
    const batch = await sdk(other.url).batches.create({
      input_file_id: file.id,
      endpoint: '/v1/predict' as any, // batchline's own endpoint, beyond the SDK's list
      completion_window: '24h',
    });
    assert.equal(batch.status, 'in_progress', JSON.stringify(batch));
    const done = await waitFor('the OpenAI batch to complete', async () => {
      const b = await sdk(stack.url).batches.retrieve(batch.id);
      return b.status === 'completed' ? b : undefined;
    });
    assert.deepEqual(done.request_counts, { total: n, completed: n, failed: 0 });
    const lines = (await (await sdk(stack.url).files.content(done.output_file_id!)).text()).split('\n').filter(Boolean);
    const labels = new Map(lines.map((l) => JSON.parse(l)).map((l) => [l.custom_id, l.response.body.label]));
    assert.deepEqual(
      [...labels.entries()].sort(),
      items(n)
        .map((i, index) => [i.id, expectedLabel(index)])
        .sort(),
    );
  });

  test(
    'PostgreSQL restarted mid-batch: 503 with Retry-After while it is down, then every item runs, recorded once',
    { timeout: 180_000 },
    async (t) => {
      const stack = stacks.find((s) => s.backend === 'postgres') ?? (await startStack(databaseUrl));
      const n = 1500;
      const created = await request(stack.url, 'POST', '/v1/batches', {
        model: 'digits',
        items: items(n),
        // maxAttempts: an item whose attempts all fall into the outage (about 5 s) is never failed for it.
        options: { concurrency: 8, itemTimeoutMs: 3000, initialIntervalMs: 1000, maxAttempts: 8 },
      });
      assert.equal(created.status, 202, JSON.stringify(created.body));
      const id = created.body.id as string;
      const sse = followEvents(`${stack.url}/v1/batches/${id}/events`, 150_000);
      sse.catch(() => undefined); // awaited below; a failure meanwhile must not go unhandled

      const atRestart = await waitFor(
        'a fifth of the items to have results',
        async () => {
          const res = await request(stack.url, 'GET', `/v1/batches/${id}`);
          return res.body.counts?.succeeded >= n / 5 ? res.body : undefined;
        },
        90_000,
        50,
      );
      assert.ok(atRestart.counts.succeeded < n, `the batch ended before the restart: ${JSON.stringify(atRestart)}`);

      // While PostgreSQL stops, stays down 3 s and starts again, the API is asked about the batch.
      let back = false;
      const restarting = postgres.restart({ downMs: 3000 }).then(
        () => void (back = true),
        (err: unknown) => {
          back = true;
          throw new Error(`the test's PostgreSQL did not restart (test/helpers/postgres.ts): ${String(err)}`);
        },
      );
      restarting.catch(() => undefined); // awaited once the probes stop; a failure meanwhile must not go unhandled
      const answers: { route: string; status: number | string; retryAfter: string | null; body: string }[] = [];
      const ask = async (route: string) => {
        try {
          const res = await fetch(`${stack.url}${route}`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
          answers.push({
            route,
            status: res.status,
            retryAfter: res.headers.get('retry-after'),
            body: await res.text(),
          });
        } catch (err) {
          answers.push({ route, status: `no answer: ${(err as Error).message}`, retryAfter: null, body: '' });
        }
      };
      const routes = [`/v1/batches/${id}`, `/v1/batches/${id}/results`];
      await waitFor(
        'PostgreSQL to be back',
        async () => {
          if (back) return true;
          for (const route of routes) await ask(route);
          return false;
        },
        60_000,
        100,
      );
      await restarting;

      const show = (a: (typeof answers)[number]) => `${a.route} ${a.status} ${a.body.slice(0, 200)}`;
      const wrong = answers.filter((a) => a.status !== 200 && a.status !== 503);
      assert.deepEqual(wrong.map(show), [], `only 200 or 503 (never 500, never a hang)\n${stack.output()}`);
      for (const route of routes) {
        const refusals = answers.filter((a) => a.route === route && a.status === 503);
        assert.ok(refusals.length > 0, `${route}: 503 while PostgreSQL was down; got ${answers.map(show).join('\n')}`);
        for (const a of refusals) {
          assert.match(a.retryAfter ?? '', /^[1-9]\d*$/, `${route}: Retry-After on a 503`);
          assert.equal(JSON.parse(a.body).error.code, 'unavailable', show(a));
        }
      }

      const final = await waitFor(
        'the batch to complete after the restart',
        async () => {
          const res = await request(stack.url, 'GET', `/v1/batches/${id}`);
          return res.body.status === 'completed' ? res.body : undefined;
        },
        120_000,
        250,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${stack.output()}`);
      });
      assert.deepEqual(final.counts, allSucceeded(n), 'every item succeeded');

      const listed = await fetch(`${stack.url}/v1/batches/${id}/results`);
      assert.equal(listed.status, 200);
      const results = (await listed.text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        results.map((r) => [r.index, r.id, r.status, r.result?.label]),
        indexes(n).map((i) => [i, `digit-${i}`, 'succeeded', expectedLabel(i)]),
        "one stored result per item, the model's label",
      );
      assert.ok(
        results.some((r) => r.attempts >= 2),
        'items whose attempts failed while PostgreSQL was down ran again once it was back',
      );

      // The store itself: one result row and one item event per item (a retried write recorded nothing twice).
      const db = new pg.Client({ connectionString: databaseUrl });
      await db.connect();
      try {
        const perItem = async (table: string) =>
          (
            await db.query<{ idx: number; rows: number }>(
              `SELECT idx, count(*)::int AS rows FROM ${table} WHERE batch_id = $1 AND idx >= 0 ` +
                'GROUP BY idx ORDER BY idx',
              [id],
            )
          ).rows.map((r) => [r.idx, r.rows]);
        assert.deepEqual(
          await perItem('results'),
          indexes(n).map((i) => [i, 1]),
          'one result row per item',
        );
        assert.deepEqual(
          await perItem('events'),
          indexes(n).map((i) => [i, 1]),
          'one item event per item',
        );
      } finally {
        await db.end();
      }

      // The SSE stream followed across the outage, as a client reconnecting with Last-Event-ID would.
      const followed = await sse.catch((err: Error) => {
        throw new Error(`SSE across the restart: ${err.message}\n${stack.output()}`);
      });
      const itemEvents = followed.events.filter((e) => e.event.startsWith('item.'));
      const how =
        `(${followed.reconnects} reconnects, ${followed.streamErrors} error events, ` +
        `refused: ${followed.refused.join(', ')}; dropped: ${followed.dropped.join(', ')})`;
      assert.deepEqual(
        itemEvents.map((e) => e.data.index).sort((a, b) => a - b),
        indexes(n),
        `SSE across the restart: every item event exactly once, none missing ${how}`,
      );
      const seqs = itemEvents.map((e) => Number(e.id));
      assert.ok(
        seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
        `SSE event ids increase across reconnects ${how}`,
      );
      assert.ok(
        followed.refused.every((r) => r === 503),
        `a reconnect while PostgreSQL was down is refused with 503 only ${how}`,
      );
      const end = followed.events.at(-1)!;
      assert.equal(end.event, 'batch.completed');
      assert.deepEqual(end.data.counts, allSucceeded(n));
      const byStatus = new Map<string, number>();
      for (const a of answers) {
        const key = `${a.route.replace(id, ':id')} ${a.status}`;
        byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
      }
      t.diagnostic(`answers during the restart: ${[...byStatus].map(([k, v]) => `${k} x${v}`).join(', ')}`);
      t.diagnostic(`items run again: ${results.filter((r) => r.attempts >= 2).length}; SSE ${how}`);
    },
  );
});
