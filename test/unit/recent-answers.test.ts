// RecentAnswers (src/client/recent-answers.ts): what a batch's readers share of its workflow's answers, with short
// ages so the test runs in real time: a fresh answer is served without a query, a stale one at once while one query
// runs, one past the stale age only after a new query; readers at once share one query; forget forces a new one;
// a failed query reaches its reader and is not kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentAnswers } from '../../src/client/recent-answers.js';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function counted(queryMs: number) {
  const calls: string[] = [];
  let fail = false;
  const answers = new RecentAnswers(
    async (id) => {
      calls.push(id);
      const n = calls.length;
      await delay(queryMs);
      if (fail) throw new Error(`query ${n} failed`);
      return { n };
    },
    { freshMs: 100, staleMs: 400 },
  );
  return { answers, calls, failing: (f: boolean) => (fail = f) };
}

test('a fresh answer is shared; a stale one is served at once while one query runs; a too old one waits', async () => {
  const { answers, calls } = counted(50);
  const first = await Promise.all([answers.get('a'), answers.get('a'), answers.get('a')]);
  assert.deepEqual(first, [{ n: 1 }, { n: 1 }, { n: 1 }], 'readers at once share one query');
  assert.deepEqual(await answers.get('a'), { n: 1 }, 'fresh: no query');
  assert.equal(calls.length, 1);

  await delay(150); // stale, younger than staleMs
  assert.deepEqual(await answers.get('a'), { n: 1 }, 'stale: the last answer, not the new one');
  assert.equal(calls.length, 2, 'and a new query started');
  await delay(80);
  assert.deepEqual(await answers.get('a'), { n: 2 }, "the new query's answer once it came");

  await delay(500); // older than staleMs
  assert.deepEqual(await answers.get('a'), { n: 3 }, 'too old: the reader waits for a new answer');
  assert.deepEqual(await answers.get('b'), { n: 4 }, 'batches are apart');
});

test('forget drops an answer; a failed query reaches its reader and leaves nothing behind', async () => {
  const { answers, calls, failing } = counted(10);
  assert.deepEqual(await answers.get('a'), { n: 1 });
  answers.forget('a');
  assert.deepEqual(await answers.get('a'), { n: 2 }, 'after forget, a new query');
  answers.forget('a');
  failing(true);
  await assert.rejects(answers.get('a'), /query 3 failed/);
  failing(false);
  assert.deepEqual(await answers.get('a'), { n: 4 });
  assert.equal(calls.length, 4);
});
