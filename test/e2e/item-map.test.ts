// The item map of a batch (GET /v1/batches/:id/item-map), and a new concurrency for it while it runs, against the real dev server and model: blocks of equal
// size whose counts add up to the batch, finished items from the store, running ones from the workflow (items held
// at the runtime's gate while the test looks), the rest pending, or canceled once the batch is.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ItemMap } from '../../src/contracts/item-map.js';
import { heldout } from '../helpers/data.js';
import { waitFor } from '../helpers/temporal.js';
import { GLOBEX, HELD, startOnlineStack, type OnlineStack } from './online-stack.js';

const rows = heldout('digits');
const held = (i: number) => ({ input: [HELD, ...rows[i % rows.length]!.inputs.input.slice(1)] });

describe('item map of a batch on a real Temporal dev server', () => {
  let s: OnlineStack;

  before(async () => {
    s = await startOnlineStack();
  });

  after(async () => {
    s?.gate.open();
    await s?.close();
  });

  const sum = (map: ItemMap, key: keyof ItemMap['blocks'][number]) => map.blocks.reduce((n, b) => n + b[key], 0);

  test('blocks add up to the batch; held items show as running where they are; the rest pending, then canceled', async () => {
    s.gate.shut();
    const n = 95;
    const heldAt = [7, 50]; // blocks 0 and 5 of ten items each
    const items = Array.from({ length: n }, (_, i) => ({
      inputs: heldAt.includes(i) ? held(i) : rows[i % rows.length]!.inputs,
    }));
    const created = await s.call('POST', '/v1/batches', { model: 'digits', items, options: { concurrency: 4 } });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = created.body.id as string;
    const map = await waitFor('every free item to finish', async () => {
      const res = await s.call('GET', `/v1/batches/${id}/item-map?blocks=10`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const parsed = ItemMap.parse(res.body);
      return sum(parsed, 'succeeded') === n - heldAt.length && sum(parsed, 'running') === 2 ? parsed : undefined;
    });
    assert.equal(map.total, n);
    assert.equal(map.blockSize, 10);
    assert.equal(map.blocks.length, 10);
    assert.deepEqual(map.blocks.at(-1), {
      from: 90,
      to: 95,
      pending: 0,
      running: 0,
      succeeded: 5,
      failed: 0,
      canceled: 0,
    });
    assert.deepEqual(
      map.blocks.map((b) => b.running),
      [1, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    );
    for (const b of map.blocks)
      assert.equal(b.pending + b.running + b.succeeded + b.failed + b.canceled, b.to - b.from);

    const other = await s.call('GET', `/v1/batches/${id}/item-map`, undefined, {}, GLOBEX);
    assert.equal(other.status, 404, "another tenant's batch does not exist for it");
    const bad = await s.call('GET', `/v1/batches/${id}/item-map?blocks=0`);
    assert.equal(bad.status, 400);

    // a new concurrency for the running batch
    const set = await s.call('POST', `/v1/batches/${id}/concurrency`, { concurrency: 7 });
    assert.equal(set.status, 202, JSON.stringify(set.body));
    await waitFor(
      'the batch to run 7 at once',
      async () => (await s.call('GET', `/v1/batches/${id}`)).body.concurrency === 7,
    );
    assert.equal((await s.call('POST', `/v1/batches/${id}/concurrency`, { concurrency: 0 })).status, 400);
    assert.equal((await s.call('POST', `/v1/batches/${id}/concurrency`, { concurrency: 3 }, {}, GLOBEX)).status, 404);

    assert.equal((await s.call('POST', `/v1/batches/${id}/cancel`)).status, 202);
    const canceled = await waitFor('the batch to be canceled', async () => {
      const res = await s.call('GET', `/v1/batches/${id}/item-map?blocks=10`);
      return res.body.blocks && sum(res.body, 'canceled') === 2 ? ItemMap.parse(res.body) : undefined;
    });
    assert.equal(sum(canceled, 'pending') + sum(canceled, 'running'), 0);
    assert.equal(sum(canceled, 'succeeded'), n - 2);
    const ended = await s.call('POST', `/v1/batches/${id}/concurrency`, { concurrency: 3 });
    assert.equal(ended.status, 409, 'an ended batch takes no new concurrency');
  });

  test('a sharded batch in blocks of 128 (counts kept per 64 items): held items run in their shards, the rest wait', async () => {
    s.gate.shut();
    const n = 640;
    const heldAt = [10, 200]; // shard 0 [0, 128) and shard 1 [128, 256); shards 2-4 wait for a free shard slot
    const items = Array.from({ length: n }, (_, i) => ({
      inputs: heldAt.includes(i) ? held(i) : rows[i % rows.length]!.inputs,
    }));
    const options = { concurrency: 4, shardSize: 128, maxConcurrentShards: 2 };
    const created = await s.call('POST', '/v1/batches', { model: 'digits', items, options });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = created.body.id as string;
    const blocksOf = async () => {
      const res = await s.call('GET', `/v1/batches/${id}/item-map?blocks=5`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return ItemMap.parse(res.body);
    };
    let last: ItemMap | undefined;
    const map = await waitFor('the first two shards to finish all but their held items', async () => {
      const m = (last = await blocksOf());
      return sum(m, 'succeeded') === 2 * 128 - 2 && sum(m, 'running') === 2 ? m : undefined;
    }).catch((err: Error) => {
      const running = s.call('GET', `/v1/batches/${id}`).then((r) => JSON.stringify(r.body));
      return running.then((batch) => {
        throw new Error(`${err.message}; last map ${JSON.stringify(last?.blocks)}; batch ${batch}`);
      });
    });
    assert.equal(map.blockSize, 128);
    assert.deepEqual(
      map.blocks.map((b) => [b.from, b.to, b.pending, b.running, b.succeeded]),
      [
        [0, 128, 0, 1, 127],
        [128, 256, 0, 1, 127],
        [256, 384, 128, 0, 0],
        [384, 512, 128, 0, 0],
        [512, 640, 128, 0, 0],
      ],
    );
    s.gate.open();
    const done = await waitFor('the batch to finish', async () => {
      const m = await blocksOf();
      return sum(m, 'succeeded') === n ? m : undefined;
    });
    assert.deepEqual(
      done.blocks.map((b) => b.succeeded),
      [128, 128, 128, 128, 128],
    );
    assert.equal(sum(done, 'pending') + sum(done, 'running'), 0);
  });
});
