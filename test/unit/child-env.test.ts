// childEnv: a child process's environment from the inherited one and its role's settings (src/cluster/topology.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { childEnv, WORKER_PROCESS_ENV } from '../../src/cluster/topology.js';

test('layers set their values over the inherited environment, in order', () => {
  const env = childEnv({ A: 'inherited', B: 'inherited' }, { A: 'first', C: 'first' }, { C: 'second' });
  assert.deepEqual(env, { A: 'first', B: 'inherited', C: 'second' });
});

test("NODE_OPTIONS is joined: the layers' in order, then the inherited, so a person's own options win", () => {
  const env = childEnv({ NODE_OPTIONS: '--max-old-space-size=4096' }, WORKER_PROCESS_ENV, { NODE_OPTIONS: '--x' });
  assert.equal(env.NODE_OPTIONS, '--max-semi-space-size=32 --x --max-old-space-size=4096');
  assert.equal(env.MALLOC_ARENA_MAX, '2');
});

test('NODE_OPTIONS: a layer without it, or a blank one, adds nothing; none at all leaves it unset', () => {
  assert.equal(childEnv({ NODE_OPTIONS: '--a' }, { B: '1' }, { NODE_OPTIONS: undefined }).NODE_OPTIONS, '--a');
  assert.equal(childEnv({ NODE_OPTIONS: ' ' }, WORKER_PROCESS_ENV).NODE_OPTIONS, '--max-semi-space-size=32');
  assert.equal('NODE_OPTIONS' in childEnv({ A: '1' }, { B: '2' }), false);
  assert.equal('NODE_OPTIONS' in childEnv({ NODE_OPTIONS: '' }, { NODE_OPTIONS: ' ' }), false);
});

test('the inherited environment is not changed', () => {
  const inherited = { NODE_OPTIONS: '--a' };
  childEnv(inherited, WORKER_PROCESS_ENV);
  assert.deepEqual(inherited, { NODE_OPTIONS: '--a' });
});
