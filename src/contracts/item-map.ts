import { z } from 'zod';
import { queryNumber } from './batch-queries.js';

/** The most blocks an item map has: enough for a screen, few enough to draw at once. */
export const MAX_MAP_BLOCKS = 2000;

export const ItemMapQuery = z
  .object({
    blocks: queryNumber(z.number().int().min(1).max(MAX_MAP_BLOCKS))
      .default(500)
      .meta({
        description:
          `How many blocks to cut the batch's items into (at most ${MAX_MAP_BLOCKS}). A block of 64 items or more ` +
          'holds a multiple of 64, so a large batch may come in fewer blocks than asked.',
      }),
  })
  .strict();

/** One block of consecutive items [from, to), by state. */
export const ItemMapBlock = z.object({
  from: z.number().int(),
  to: z.number().int(),
  pending: z.number().int(),
  running: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  canceled: z.number().int(),
});
export type ItemMapBlock = z.infer<typeof ItemMapBlock>;

/**
 * `GET /v1/batches/:id/item-map`: the batch's items in blocks of equal size (the last may be shorter); a size of 64
 * or more is a multiple of 64.
 */
export const ItemMap = z
  .object({ total: z.number().int(), blockSize: z.number().int(), blocks: z.array(ItemMapBlock) })
  .meta({ id: 'ItemMap' });
export type ItemMap = z.infer<typeof ItemMap>;
