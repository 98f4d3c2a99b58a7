import { ItemMap, ItemMapQuery, type ItemMapBlock } from '../../contracts/item-map.js';
import { COUNTED_BLOCK } from '../../stores/item-store.js';
import type { RunningRange } from '../../../workflows/messages.js';
import { BatchPath } from '../path-params.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

/**
 * Adds running items to the blocks, never more than a block has unfinished (the store may already hold the outcome
 * of an item the workflow has not yet heard of). A range whose items all run is exact; a range with fewer (a shard
 * that did not answer for itself) has its count placed on its first unfinished items, as a window runs them.
 */
function placeRunning(blocks: ItemMapBlock[], blockSize: number, ranges: RunningRange[]): void {
  for (const r of ranges) {
    let left = r.running;
    for (let b = Math.floor(r.from / blockSize); b < blocks.length && left > 0; b++) {
      const block = blocks[b]!;
      if (block.from >= r.to) break;
      const overlap = Math.min(block.to, r.to) - Math.max(block.from, r.from);
      const room = block.to - block.from - block.succeeded - block.failed - block.running;
      const n = Math.max(0, Math.min(left, overlap, room));
      block.running += n;
      left -= n;
    }
  }
}

function blockSizeFor(total: number, blocks: number): number {
  const size = Math.max(1, Math.ceil(total / blocks));
  return size < COUNTED_BLOCK ? size : Math.ceil(size / COUNTED_BLOCK) * COUNTED_BLOCK;
}

/**
 * A batch's items as a map of blocks: what a dashboard draws for a batch of any size. Finished items are counted
 * from the item store in one grouped read; running ones come from the workflow's running query (ranges, no scan; a
 * sharded batch's from its running shards); the rest are pending (canceled, once the batch was). A block of
 * COUNTED_BLOCK items or more is a whole number of the store's counted blocks, so the read is of the kept counts
 * (about 16k rows at 1M items), never of every result.
 */
export const batchMapRoutes: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v1/batches/:id/item-map',
    operationId: 'getItemMap',
    summary: "A batch's items by state, in blocks",
    tag: 'Batches',
    request: { params: BatchPath, query: ItemMapQuery },
    responses: { 200: json(ItemMap, 'The blocks, in index order.') },
    errors: [404, 503],
    handler: async ({ params: { id }, query }, { req, res, deps }) => {
      const { batches } = deps;
      const batch = await batches.requireBatch(id, req.tenant);
      const blockSize = blockSizeFor(batch.total, query.blocks);
      const count = Math.ceil(batch.total / blockSize);
      const blocks: ItemMapBlock[] = Array.from({ length: count }, (_, b) => {
        const from = b * blockSize;
        const to = Math.min(batch.total, from + blockSize);
        return { from, to, pending: 0, running: 0, succeeded: 0, failed: 0, canceled: 0 };
      });
      for (const c of await batches.store.countResultsByBlock(id, blockSize)) {
        blocks[c.block]!.succeeded = c.succeeded;
        blocks[c.block]!.failed = c.failed;
      }
      const end = await batches.outcome(id);
      if (!end) placeRunning(blocks, blockSize, await batches.running(id, req.tenant));
      const rest = end?.status === 'canceled' ? 'canceled' : 'pending';
      for (const b of blocks) b[rest] = b.to - b.from - b.succeeded - b.failed - b.running;
      res.json({ total: batch.total, blockSize, blocks } satisfies ItemMap);
    },
  }),
];
