// Faults of the processes around the workers: the Temporal dev server killed (SIGKILL) mid-batch and started again
// on the same data, and the API process stopped (SIGTERM) while a client follows a batch's SSE stream, which the
// client resumes on a new API process with Last-Event-ID. Real processes, real signals; every invariant of
// test/helpers/faults.ts afterwards, and the resumed stream sees every item once.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { EventType } from '../../src/contracts/event-type.js';
import { startServer } from '../../src/server.js';
import { openItemStore } from '../../src/stores/open-stores.js';
import { heldout, http } from '../helpers/data.js';
import { assertInvariants, figure } from '../helpers/faults.js';
import { readSse } from '../helpers/sse.js';
import {
  exitOf,
  freePort,
  outputOf,
  spawnBatchline,
  useTestTemporal,
  testConfig,
  testLog,
  waitFor,
} from '../helpers/temporal.js';

const rows = heldout('digits');
const items = (n: number) => Array.from({ length: n }, (_, i) => ({ inputs: rows[i % rows.length]!.inputs }));

describe('fault: the processes around the workers die', () => {
  const env = useTestTemporal();

  test('the Temporal dev server SIGKILLed mid-batch and started again: the batch completes, nothing lost', async () => {
    const { temporal, client } = env;
    const config = testConfig(temporal.address);
    const api = await startServer(config, testLog);
    const store = await openItemStore(config);
    const worker = spawnBatchline('worker', config);
    const total = 1000;
    try {
      const res = await http(api.url, 'POST', '/v1/batches', { model: 'digits', items: items(total) });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const id = res.body.id as string;
      await waitFor('a third of the items', async () => {
        const c = await store.countResults(id);
        return c.succeeded >= total / 3;
      });
      temporal.server.child.kill('SIGKILL');
      assert.equal(await temporal.server.exited, null, 'killed by a signal');
      const killedAt = Date.now();
      const atKill = (await store.countResults(id)).succeeded;
      await temporal.restart(); // same port, same SQLite file
      await waitFor('the batch to go on', async () => (await store.countResults(id)).succeeded > atKill, 60_000, 50);
      figure('dev server SIGKILL → restarted → next result', Date.now() - killedAt, 'ms');
      await assertInvariants({ api: api.url, client, store }, id, total);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nworker output:\n${outputOf(worker)}`, { cause: err });
    } finally {
      worker.kill('SIGTERM');
      await exitOf(worker);
      await store.close();
      await api.close();
    }
  });

  test('the API SIGTERMed during SSE: a new API resumes the stream with Last-Event-ID, every item once', async () => {
    const { temporal, client } = env;
    const config = testConfig(temporal.address);
    const store = await openItemStore(config);
    const worker = spawnBatchline('worker', config);
    const apiProcess = async (): Promise<{ child: ChildProcess; url: string }> => {
      const port = await freePort();
      const child = spawnBatchline('api', { ...config, PORT: port });
      const url = `http://127.0.0.1:${port}`;
      await waitFor('the API to serve', async () => (await fetch(`${url}/healthz`)).ok, 60_000, 100).catch((err) => {
        throw new Error(`${err.message}\n${outputOf(child)}`);
      });
      return { child, url };
    };
    let first = await apiProcess();
    let second: Awaited<ReturnType<typeof apiProcess>> | undefined;
    const total = 400;
    try {
      const res = await http(first.url, 'POST', '/v1/batches', {
        model: 'digits',
        items: items(total),
        options: { concurrency: 2 },
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const id = res.body.id as string;
      const seen = new Map<number, number>();
      let lastId: string | undefined;
      /** Follows the stream from lastId; resolves with the end event, or undefined when the connection ends. */
      const follow = async (url: string, stopAfter?: number): Promise<string | undefined> => {
        try {
          for await (const e of readSse(`${url}/v1/batches/${id}/events`, { lastEventId: lastId })) {
            if (e.event === EventType.itemSucceeded || e.event === EventType.itemFailed) {
              seen.set(e.data.index, (seen.get(e.data.index) ?? 0) + 1);
              lastId = e.id;
              if (stopAfter !== undefined && seen.size === stopAfter) first.child.kill('SIGTERM');
            } else if (e.event === EventType.batchCompleted) return e.event;
          }
        } catch (err) {
          // The server closing the connection, as an EventSource sees it: reconnect with Last-Event-ID.
          if (stopAfter === undefined) throw err;
        }
        return undefined;
      };
      // The API goes away while the stream is open: the client is cut off and the API exits cleanly.
      assert.equal(await follow(first.url, 50), undefined, 'the stream ended with the API, before the batch');
      assert.equal(await exitOf(first.child), 0, `the API exited cleanly:\n${outputOf(first.child)}`);
      assert.ok(seen.size >= 50 && seen.size < total, `followed part of the batch: ${seen.size}`);
      second = await apiProcess();
      assert.equal(await follow(second.url), EventType.batchCompleted, 'the resumed stream ends with the batch');
      assert.deepEqual(
        [...seen.entries()].filter(([, n]) => n > 1),
        [],
        'no item event twice across the resume',
      );
      assert.equal(seen.size, total, 'every item event across the two APIs');
      await assertInvariants({ api: second.url, client, store }, id, total);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nworker output:\n${outputOf(worker)}`, { cause: err });
    } finally {
      first.child.kill('SIGKILL');
      second?.child.kill('SIGTERM');
      if (second) await exitOf(second.child);
      worker.kill('SIGTERM');
      await exitOf(worker);
      await store.close();
    }
  });
});
