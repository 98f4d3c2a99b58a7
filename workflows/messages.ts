import { defineQuery } from '@temporalio/workflow';
import type { BatchStatus, ItemCounts, ItemStatus } from '../src/contracts/batch.js';

export interface Progress {
  batchId: string;
  model: string;
  status: BatchStatus;
  total: number;
  counts: ItemCounts;
  percent: number;
  createdAt: string;
  updatedAt: string;
}

export interface ItemsQueryArgs {
  /** Only items in this state. */
  status?: ItemStatus;
  /** Index to start from (the previous page's nextCursor). */
  cursor?: number;
  /** Items per page (default 100, at most 1000). */
  limit?: number;
}

/** An item's state as the workflow knows it; its client id and result are in the item store. */
export interface ItemState {
  index: number;
  status: ItemStatus;
  attempts: number;
  error?: { type: string; message: string };
}

export interface ItemsPage {
  items: ItemState[];
  nextCursor?: number;
}

/** Counts by state and percent done: `temporal workflow query --name progress`. */
export const progressQuery = defineQuery<Progress>('progress');
/** A page of items with their results or errors: `--name items --input '{"status":"failed"}'`. */
export const itemsQuery = defineQuery<ItemsPage, [ItemsQueryArgs?]>('items');
