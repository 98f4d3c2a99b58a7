// `batchline dev`'s restarts: a process that exits on its own starts again after a delay that doubles, and a crash
// loop (more than RESTART_LIMIT exits within RESTART_WINDOW_MS) stops the supervisor instead.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RESTART_LIMIT, RESTART_WINDOW_MS, RestartPolicy } from '../../src/cli/dev.js';

test('delays double from 1 s, and the exit after RESTART_LIMIT within the window gets none', () => {
  const policy = new RestartPolicy();
  const delays = Array.from({ length: RESTART_LIMIT }, (_, i) => policy.next(i * 1000));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000]);
  assert.equal(policy.next(RESTART_LIMIT * 1000), undefined, 'a crash loop is not started again');
  assert.equal(policy.count, RESTART_LIMIT + 1);
});

test('exits older than the window are forgotten: a process that ran a while starts again after 1 s', () => {
  const policy = new RestartPolicy();
  for (let i = 0; i < RESTART_LIMIT; i++) policy.next(i);
  assert.equal(policy.next(RESTART_LIMIT - 1 + RESTART_WINDOW_MS), 1000);
  assert.equal(policy.count, 1);
});
