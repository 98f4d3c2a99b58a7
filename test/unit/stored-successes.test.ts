// withStoredSuccesses (src/client/batch-client.ts): a running batch's counts as the API answers them, the workflow's
// counts plus the successes the item store already holds, taken from running items first, then pending ones.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withStoredSuccesses } from '../../src/client/batch-client.js';

const counts = (c: Partial<Record<'pending' | 'running' | 'succeeded' | 'failed' | 'canceled', number>>) => ({
  pending: 0,
  running: 0,
  succeeded: 0,
  failed: 0,
  canceled: 0,
  ...c,
});

test('successes the workflow has not counted yet move from running, then pending; the total stays', () => {
  const workflow = counts({ pending: 10, running: 3, succeeded: 5, failed: 2 });
  assert.deepEqual(withStoredSuccesses(workflow, { succeeded: 5 }), workflow, 'nothing new');
  assert.deepEqual(withStoredSuccesses(workflow, { succeeded: 3 }), workflow, 'the workflow ahead: its counts');
  assert.deepEqual(
    withStoredSuccesses(workflow, { succeeded: 7 }),
    counts({ pending: 10, running: 1, succeeded: 7, failed: 2 }),
  );
  assert.deepEqual(
    withStoredSuccesses(workflow, { succeeded: 10 }),
    counts({ pending: 8, running: 0, succeeded: 10, failed: 2 }),
  );
  assert.deepEqual(
    withStoredSuccesses(workflow, { succeeded: 99 }),
    counts({ pending: 0, running: 0, succeeded: 18, failed: 2 }),
  );
});
