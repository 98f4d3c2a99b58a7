import { ItemMap, ItemMapQuery, type ItemMapBlock } from '../../contracts/item-map.js';
import { COUNTED_BLOCK } from '../../stores/item-store.js';
import { BatchPath } from '../path-params.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

/** The most running items the map asks the workflow for (more than any window holds). */
const MAX_RUNNING = 10_000;

/**
 * A batch's items as a map of blocks: what a dashboard draws for a batch of any size. Finished items are counted
 * from the item store in one grouped read; running ones come from the workflow; the rest are pending (canceled,
 * once the batch was). A block of COUNTED_BLOCK items or more is a whole number of the store's counted blocks, so
 * the read is of the kept counts (about 16k rows at 1M items), never of every result.
 */
function blockSizeFor(total: number, blocks: number): number {
  const size = Math.max(1, Math.ceil(total / blocks));
  return size < COUNTED_BLOCK ? size : Math.ceil(size / COUNTED_BLOCK) * COUNTED_BLOCK;
}

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
      const summary = await batches.summary(id, req.tenant);
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
      if (summary.status === 'running' && summary.counts.running > 0) {
        const running = await batches.items(id, req.tenant, { status: 'running', limit: MAX_RUNNING });
        for (const item of running.items) blocks[Math.floor(item.index / blockSize)]!.running++;
      }
      const rest = summary.status === 'canceled' ? 'canceled' : 'pending';
      for (const b of blocks) b[rest] = Math.max(0, b.to - b.from - b.succeeded - b.failed - b.running);
      res.json({ total: batch.total, blockSize, blocks } satisfies ItemMap);
    },
  }),
];
