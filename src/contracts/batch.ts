import { z } from 'zod';

/** Lifecycle of one item. A closed set: `as const` plus a derived union, never a TS enum. */
export const ItemStatus = {
  pending: 'pending',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
} as const;
export type ItemStatus = (typeof ItemStatus)[keyof typeof ItemStatus];

export const BatchStatus = {
  running: 'running',
  completed: 'completed',
  canceled: 'canceled',
  failed: 'failed',
} as const;
export type BatchStatus = (typeof BatchStatus)[keyof typeof BatchStatus];

/** Per-batch retry and concurrency settings; every field has a default. */
export const BatchOptions = z
  .object({
    /** Attempts per item, the first included (default 5). */
    maxAttempts: z.number().int().min(1).max(100).default(5),
    /** Delay before the first retry (default 1000 ms). Temporal schedules retries in whole seconds. */
    initialIntervalMs: z.number().int().min(1000, 'Temporal schedules retries in whole seconds: at least 1000').max(3_600_000).default(1000),
    /** Each retry waits this many times longer than the one before (default 2). */
    backoffCoefficient: z.number().min(1).max(10).default(2),
    /** Upper bound on the delay between retries (default 60 s). */
    maximumIntervalMs: z.number().int().min(1000, 'Temporal schedules retries in whole seconds: at least 1000').max(86_400_000).default(60_000),
    /** Time one attempt at one item may take (default 60 s). */
    itemTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
    /** Items in flight at once for this batch (default 16). */
    concurrency: z.number().int().min(1).max(512).default(16),
    /**
     * Items per activity (default 1: one activity per item). Above 1, one activity infers a chunk of
     * consecutive items together; each item keeps its own result, failure and retries.
     */
    itemsPerActivity: z.number().int().min(1).max(1000).default(1),
    /** Items per shard: a batch larger than this runs as child workflows of this many items (default 1000). */
    shardSize: z.number().int().min(1).max(5000).default(1000),
    /** Shards running at once (default 2); each runs up to `concurrency` items. */
    maxConcurrentShards: z.number().int().min(1).max(64).default(2),
    /** A run continues as new once its history reaches this many events (default 4000; Temporal warns at 10,240). */
    eventsPerRun: z.number().int().min(100).max(9000).default(4000),
  })
  .strict();
export type BatchOptions = z.infer<typeof BatchOptions>;

/** One item's model inputs: input name -> values for one item, without the batch dimension. */
export const ItemInputs = z.record(z.string().min(1).max(256), z.unknown());
export type ItemInputs = z.infer<typeof ItemInputs>;

export const BatchItem = z
  .object({
    id: z.string().min(1).max(256).optional(),
    inputs: ItemInputs,
  })
  .strict();

export const CreateBatchRequest = z
  .object({
    model: z.string().min(1).max(128),
    version: z.number().int().positive().optional(),
    items: z.array(BatchItem).min(1),
    options: BatchOptions.default(BatchOptions.parse({})),
    metadata: z.record(z.string().max(64), z.string().max(512)).optional(),
  })
  .strict()
  .superRefine((req, ctx) => {
    const seen = new Map<string, number>();
    req.items.forEach((item, index) => {
      if (item.id === undefined) return;
      const first = seen.get(item.id);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['items', index, 'id'], message: `duplicate item id (also items[${first}])` });
      } else {
        seen.set(item.id, index);
      }
    });
  });
export type CreateBatchRequest = z.infer<typeof CreateBatchRequest>;

/** What an item's inference produced. */
export interface ItemResult {
  model: string;
  version: number;
  /** Classifiers only: the winning label. */
  label?: string;
  /** Classifiers only: one probability per label. */
  probabilities?: number[];
  /** Embedding models only: the pooled (and, per config, unit-length) vector. */
  embedding?: number[];
  /** Every other model output for this item, batch dimension removed. */
  outputs: Record<string, number | number[] | unknown[]>;
}

export interface ItemView {
  index: number;
  id: string;
  status: ItemStatus;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  result?: ItemResult;
  error?: { type: string; message: string };
}

export type ItemCounts = Record<ItemStatus, number>;

export interface BatchView {
  id: string;
  model: string;
  version?: number;
  status: BatchStatus;
  total: number;
  counts: ItemCounts;
  /** While running: paused or not, the current concurrency, the rate and the estimated completion. */
  paused?: boolean;
  concurrency?: number;
  itemsPerSecond?: number;
  eta?: string;
  createdAt: string;
  updatedAt: string;
  /** One page of items (`?cursor=&limit=` on GET /v1/batches/:id; at most 1000). */
  items: ItemView[];
  /** Cursor of the next page of items, when there is one. */
  nextCursor?: number;
}

export const CreateBatchResponse = z.object({
  id: z.string(),
  status: z.enum(['running']),
  total: z.number().int(),
  links: z.object({ self: z.string() }),
});
export type CreateBatchResponse = z.infer<typeof CreateBatchResponse>;

/** Input of batchWorkflow. Claim check: the items are in the item store; the workflow carries ids and counts. */
export interface BatchWorkflowInput {
  batchId: string;
  model: string;
  version?: number;
  total: number;
  options: BatchOptions;
  /** Set on a shard: this run covers items [start, end) of the batch. */
  range?: { start: number; end: number };
  /** When the batch started (ms since epoch), for timings that span shards and continue-as-new runs. */
  startedAtMs?: number;
  /** The parent batch workflow of a shard, which receives its progress. */
  parentWorkflowId?: string;
  /** State carried across continue-as-new. */
  carried?: CarriedRange | CarriedShards;
}

/** An item run's state across continue-as-new: per-item arrays run-length encoded (see workflows/carried-state). */
export interface CarriedRange {
  kind: 'range';
  cursor: number;
  retryQueue: number[];
  status: number[];
  attempts: number[];
  startedAt: number[];
  finishedAt: number[];
  errors: [number, string, string][];
  paused: boolean;
  concurrency: number;
}

/** A sharded batch's state across continue-as-new. */
export interface CarriedShards {
  kind: 'shards';
  nextShard: number;
  counts: ItemCounts;
  /** The dead-letter set of finished shards (capped: the item store has every failure). */
  failures: FailedItem[];
  paused: boolean;
  concurrency: number;
}

/** An item that exhausted its attempts. */
export interface FailedItem {
  index: number;
  attempts: number;
  type: string;
  message: string;
}

/** Input of the inferItem activity: which item; its inputs come from the item store. */
export interface InferItemInput {
  batchId: string;
  index: number;
  model: string;
  version?: number;
  /** The batch's maxAttempts, so the last attempt knows to record its failure. */
  maxAttempts: number;
}

/** Input of the inferChunk activity: items [start, start + count) of a batch, inferred together. */
export interface InferChunkInput {
  batchId: string;
  start: number;
  count: number;
  model: string;
  version?: number;
  maxAttempts: number;
}

/** An item of a chunk that did not succeed; the chunk's other items did. */
export interface ChunkItemFailure {
  index: number;
  type: string;
  message: string;
  nonRetryable: boolean;
}

/** What batchWorkflow returns: the batch's final state without its items (they are in the store). */
export type BatchSummary = Omit<BatchView, 'items'> & {
  /** A shard's failed items, for its parent to aggregate. */
  failures?: FailedItem[];
};
