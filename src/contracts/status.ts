// The lifecycles of items and batches: closed sets, `as const` plus a derived union, never a TS enum.
// Dependency-free on purpose: workflow code imports it as a value (the determinism test bundles it).

/** Lifecycle of one item. */
export const ItemStatus = {
  pending: 'pending',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
} as const;
export type ItemStatus = (typeof ItemStatus)[keyof typeof ItemStatus];

/** Lifecycle of a batch. */
export const BatchStatus = {
  running: 'running',
  completed: 'completed',
  canceled: 'canceled',
  failed: 'failed',
} as const;
export type BatchStatus = (typeof BatchStatus)[keyof typeof BatchStatus];

/** How many items are in each state. */
export type ItemCounts = Record<ItemStatus, number>;

/** Counts of `pending` items, all of them pending (a new batch or range: itemCounts(n); none: itemCounts(0)). */
export function itemCounts(pending: number): ItemCounts {
  return { pending, running: 0, succeeded: 0, failed: 0, canceled: 0 };
}
