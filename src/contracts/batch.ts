import { z } from 'zod';
import {
  ITEM_ID,
  MAX_CONCURRENCY,
  MAX_INPUT_NAME_LENGTH,
  MAX_ITEM_ID_LENGTH,
  MAX_SHARD_SIZE,
  METADATA_MAX_BYTES,
  METADATA_MAX_KEY_LENGTH,
  METADATA_MAX_KEYS,
  METADATA_MAX_VALUE_LENGTH,
  MODEL_NAME,
} from './limits.js';
import { BatchStatus, ItemStatus, type ItemCounts as Counts } from './status.js';
import { FailedDelivery, WebhookEventKind, WebhookRegistration } from './webhook.js';

export { BatchStatus, ItemStatus, itemCounts } from './status.js';

/** Per-batch retry and concurrency settings; every field has a default. */
export const BatchOptions = z
  .object({
    /** Attempts per item, the first included (default 5). */
    maxAttempts: z.number().int().min(1).max(100).default(5),
    /** Delay before the first retry (default 1000 ms). Temporal schedules retries in whole seconds. */
    initialIntervalMs: z
      .number()
      .int()
      .min(1000, 'Temporal schedules retries in whole seconds: at least 1000')
      .max(3_600_000)
      .default(1000),
    /** Each retry waits this many times longer than the one before (default 2). */
    backoffCoefficient: z.number().min(1).max(10).default(2),
    /** Upper bound on the delay between retries (default 60 s). */
    maximumIntervalMs: z
      .number()
      .int()
      .min(1000, 'Temporal schedules retries in whole seconds: at least 1000')
      .max(86_400_000)
      .default(60_000),
    /** Time one attempt at one item may take (default 60 s). */
    itemTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
    /** Items in flight at once for this batch (default 16). */
    concurrency: z.number().int().min(1).max(MAX_CONCURRENCY).default(16),
    /**
     * Items per activity (default 1: one activity per item). Above 1, one activity infers a chunk of
     * consecutive items together; each item keeps its own result, failure and retries.
     */
    itemsPerActivity: z.number().int().min(1).max(5000).default(1),
    /**
     * How item activities run (default 'remote'): 'remote' activities go through the Temporal server's task
     * queue, so any worker can take any item and a long item heartbeats; 'local' activities run inside the
     * workflow task on the worker that holds the batch's (or shard's) workflow: a third of the history events
     * and almost no server work per item, no heartbeats, and steering answered within about 2.4 s. Retries and
     * backoff are the same.
     */
    itemActivities: z.enum(['remote', 'local']).default('remote'),
    /** Items per shard: a batch larger than this runs as child workflows of this many items (default 1000). */
    shardSize: z.number().int().min(1).max(MAX_SHARD_SIZE).default(1000),
    /** Shards running at once (default 2); each runs up to `concurrency` items. */
    maxConcurrentShards: z.number().int().min(1).max(64).default(2),
    /** A run continues as new once its history reaches this many events (default 4000; Temporal warns at 10,240). */
    eventsPerRun: z.number().int().min(100).max(9000).default(4000),
  })
  .strict()
  .meta({ id: 'BatchOptions' });
export type BatchOptions = z.infer<typeof BatchOptions>;

/** One item's model inputs: input name -> values for one item, without the batch dimension. */
export const ItemInputs = z.record(z.string().min(1).max(MAX_INPUT_NAME_LENGTH), z.unknown());
export type ItemInputs = z.infer<typeof ItemInputs>;

export const BatchItem = z
  .object({
    id: z.string().min(1).max(MAX_ITEM_ID_LENGTH).regex(ITEM_ID, 'an item id holds no control characters').optional(),
    inputs: ItemInputs,
  })
  .strict()
  .meta({ id: 'BatchItem' });
export type BatchItem = z.infer<typeof BatchItem>;

/** A model name as requests give it (the repository's directory names); anything else names no model. */
export const ModelName = z
  .string()
  .regex(MODEL_NAME, 'not a model name: 1-128 of [A-Za-z0-9._-], starting alphanumeric');

/** Labels a client keeps with a batch, shown when it is read or listed (limits.ts says how many and how long). */
export const BatchMetadata = z
  .record(z.string().max(METADATA_MAX_KEY_LENGTH), z.string().max(METADATA_MAX_VALUE_LENGTH))
  .refine((m) => Object.keys(m).length <= METADATA_MAX_KEYS, `at most ${METADATA_MAX_KEYS} keys`)
  .refine(
    (m) => new TextEncoder().encode(JSON.stringify(m)).length <= METADATA_MAX_BYTES,
    `at most ${METADATA_MAX_BYTES} bytes as JSON`,
  )
  .meta({
    maxProperties: METADATA_MAX_KEYS,
    propertyNames: { type: 'string', maxLength: METADATA_MAX_KEY_LENGTH },
    description:
      `At most ${METADATA_MAX_KEYS} keys of up to ${METADATA_MAX_KEY_LENGTH} characters, string values of up to ` +
      `${METADATA_MAX_VALUE_LENGTH}, ${METADATA_MAX_BYTES} bytes as JSON in all.`,
  });
export type BatchMetadata = z.infer<typeof BatchMetadata>;

export const CreateBatchRequest = z
  .object({
    model: ModelName,
    version: z.number().int().positive().optional(),
    items: z.array(BatchItem).min(1),
    options: BatchOptions.default(BatchOptions.parse({})),
    metadata: BatchMetadata.optional(),
    /** Where item events and/or the batch's end are delivered (Standard Webhooks). */
    webhook: WebhookRegistration.optional(),
  })
  .strict()
  .superRefine((req, ctx) => {
    const seen = new Map<string, number>();
    req.items.forEach((item, index) => {
      if (item.id === undefined) return;
      const first = seen.get(item.id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['items', index, 'id'],
          message: `duplicate item id (also items[${first}])`,
        });
      } else {
        seen.set(item.id, index);
      }
    });
  })
  .meta({ id: 'CreateBatchRequest' });
export type CreateBatchRequest = z.infer<typeof CreateBatchRequest>;

const ItemStatusSchema = z.enum(ItemStatus);
const BatchStatusSchema = z.enum(BatchStatus);

/** The statuses of a finished item: what `/results` lines, `item.*` events and item webhooks report. */
export const FinishedItemStatus = ItemStatusSchema.extract(['succeeded', 'failed']);

/** What an item's inference produced. */
export const ItemResult = z
  .object({
    model: z.string(),
    version: z.number().int(),
    /** Classifiers only: the winning label. */
    label: z.string().optional(),
    /** Classifiers only: one probability per label. */
    probabilities: z.array(z.number()).optional(),
    /** Embedding models only: the pooled (and, per config, unit-length) vector. */
    embedding: z.array(z.number()).optional(),
    /** Text models only: the item's length in tokens, after truncation (what OpenAI's `usage` counts). */
    tokens: z.number().int().optional(),
    /** Every other model output for this item, batch dimension removed. */
    outputs: z.record(z.string(), z.union([z.number(), z.array(z.unknown())])),
  })
  .meta({ id: 'ItemResult' });
export type ItemResult = z.infer<typeof ItemResult>;

export const ItemError = z.object({ type: z.string(), message: z.string() }).meta({ id: 'ItemError' });

/** One finished item as `/results` lines, `item.*` SSE events and item webhooks carry it. */
export const ItemOutcome = z
  .object({
    index: z.number().int(),
    id: z.string(),
    status: FinishedItemStatus,
    attempts: z.number().int(),
    result: ItemResult.optional(),
    error: ItemError.optional(),
    finishedAt: z.string(),
  })
  .meta({ id: 'ItemOutcome' });
export type ItemOutcome = z.infer<typeof ItemOutcome>;

/** The outcome of a stored result or event, with only the fields that are set. */
export function itemOutcome(e: ItemOutcome): ItemOutcome {
  return {
    index: e.index,
    id: e.id,
    status: e.status,
    attempts: e.attempts,
    ...(e.result ? { result: e.result } : {}),
    ...(e.error ? { error: e.error } : {}),
    finishedAt: e.finishedAt,
  };
}

export const ItemView = z
  .object({
    index: z.number().int(),
    id: z.string(),
    status: ItemStatusSchema,
    attempts: z.number().int(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    result: ItemResult.optional(),
    error: ItemError.optional(),
  })
  .meta({ id: 'ItemView' });
export type ItemView = z.infer<typeof ItemView>;

/** `GET /v1/batches/:id/items/:itemId`: one item, with the inputs it was submitted with. */
export const ItemDetail = ItemView.extend({ inputs: ItemInputs }).meta({ id: 'ItemDetail' });
export type ItemDetail = z.infer<typeof ItemDetail>;

/** How many items are in each state: one count per ItemStatus. */
export const ItemCounts = z.object(
  Object.fromEntries(Object.values(ItemStatus).map((s) => [s, z.number().int()])) as Record<ItemStatus, z.ZodNumber>,
);
export type ItemCounts = Counts;

/** `GET /v1/batches/:id/items`: one page of items in index order. */
export const ItemsPage = z
  .object({ items: z.array(ItemView), nextCursor: z.number().int().optional() })
  .meta({ id: 'ItemsPage' });

const BatchLinks = z.object({ self: z.string(), items: z.string(), results: z.string(), events: z.string() });
export const batchLinks = (id: string): z.infer<typeof BatchLinks> => ({
  self: `/v1/batches/${id}`,
  items: `/v1/batches/${id}/items`,
  results: `/v1/batches/${id}/results`,
  events: `/v1/batches/${id}/events`,
});

/** `GET /v1/batches/:id`: the batch's state without its items. */
export const BatchResource = z
  .object({
    id: z.string(),
    model: z.string(),
    version: z.number().int().optional(),
    status: BatchStatusSchema,
    total: z.number().int(),
    counts: ItemCounts,
    /** While running: paused or not, the current concurrency, the rate and the estimated completion. */
    paused: z.boolean().optional(),
    concurrency: z.number().int().optional(),
    itemsPerSecond: z.number().optional(),
    eta: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
    metadata: z.record(z.string(), z.string()).optional(),
    /** The registered callback (never its secret) and deliveries that will not be retried again. */
    webhook: z
      .object({
        url: z.string(),
        events: z.array(z.enum(WebhookEventKind)),
        failedDeliveries: z.array(FailedDelivery),
      })
      .optional(),
    links: BatchLinks,
  })
  .meta({ id: 'BatchResource' });
export type BatchResource = z.infer<typeof BatchResource>;

/** The data of `batch.progress` and of the terminal `batch.*` events: the batch's state without its links. */
export const BatchProgress = BatchResource.omit({ links: true, webhook: true, metadata: true }).meta({
  id: 'BatchProgress',
});
export type BatchProgress = z.infer<typeof BatchProgress>;

/** The summary and one page of items: what the workflow tests read through BatchClient.get. */
export type BatchView = Omit<BatchResource, 'links' | 'webhook' | 'metadata'> & {
  items: ItemView[];
  nextCursor?: number;
};

/** `GET /v1/batches`: a tenant's batches, newest first. */
export const BatchListPage = z
  .object({
    batches: z.array(
      z.object({
        id: z.string(),
        model: z.string(),
        version: z.number().int().optional(),
        status: BatchStatusSchema,
        total: z.number().int(),
        failed: z.number().int(),
        createdAt: z.string(),
        metadata: z.record(z.string(), z.string()).optional(),
        links: z.object({ self: z.string() }),
      }),
    ),
    nextCursor: z.string().optional(),
  })
  .meta({ id: 'BatchListPage' });
export type BatchListPage = z.infer<typeof BatchListPage>;

export const CreateBatchResponse = z
  .object({
    id: z.string(),
    status: z.enum(['running']),
    total: z.number().int(),
    counts: ItemCounts,
    links: BatchLinks,
    /** Set when a webhook was registered; `secret` is shown only here, once. */
    webhook: z.object({ url: z.string(), events: z.array(z.enum(WebhookEventKind)), secret: z.string() }).optional(),
  })
  .meta({ id: 'CreateBatchResponse' });
export type CreateBatchResponse = z.infer<typeof CreateBatchResponse>;

/** Input of batchWorkflow. Claim check: the items are in the item store; the workflow carries ids and counts. */
export interface BatchWorkflowInput {
  batchId: string;
  model: string;
  version?: number;
  total: number;
  options: BatchOptions;
  /** When the batch started (ms since epoch), for timings that span shards and continue-as-new runs. */
  startedAtMs?: number;
  /** State carried across continue-as-new: of the items (a batch without shards) or of the shards. */
  carried?: CarriedItems | CarriedShards;
}

/** Input of shardWorkflow: items [range.start, range.end) of a batch, run by a child of the batch's workflow. */
export interface ShardWorkflowInput {
  batchId: string;
  model: string;
  version?: number;
  options: BatchOptions;
  range: { start: number; end: number };
  startedAtMs: number;
  /** The batch's workflow, which receives the shard's progress. */
  parentWorkflowId: string;
  carried?: CarriedItems;
}

/** A run of items' state across continue-as-new: per-item arrays run-length encoded (workflows/carried-state). */
export interface CarriedItems {
  kind: 'items';
  /** The next item never run. */
  cursor: number;
  /** Failed items re-queued by retryFailed that have not run again yet. */
  retryQueue: number[];
  status: number[];
  attempts: number[];
  startedAt: number[];
  finishedAt: number[];
  /** [index, type, message] of failed items (capped: the item store has every failure). */
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
  /** Ended shards whose items did not all run: [shard, what its unrun items became]. */
  unfinished: [number, 'canceled' | 'failed'][];
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
  /**
   * Attempts the item had before this activity (its chunk's, when it failed in a chunk and is retried on its own):
   * the store records this activity's attempt plus these, as the workflow counts them. `maxAttempts` is then what
   * is left. Default 0.
   */
  attemptsBefore?: number;
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
  /** Whether the activity recorded this failure in the item store (it does when the failure ends the item). */
  recorded: boolean;
  /** The attempts recorded with it, when an earlier attempt of the chunk recorded it (else the chunk's attempt). */
  attempts?: number;
}

/** What an inferChunk activity returns: its attempt, and the chunk's items that did not succeed in it. */
export interface ChunkOutcome {
  attempt: number;
  failures: ChunkItemFailure[];
  /**
   * Items an earlier attempt of the chunk recorded as succeeded, with the attempts recorded for them (the chunk's
   * other successes are recorded with `attempt`).
   */
  earlier?: { index: number; attempts: number }[];
}

/**
 * What an item activity puts in the details of the failure it throws: the attempt it was, and whether it
 * recorded the failure in the item store (when it is the item's last; a store that could not write leaves it to
 * the workflow, which records it through recordItemFailures).
 */
export interface ItemFailureDetail {
  attempt: number;
  recorded?: boolean;
}

/** Input of recordItemFailures: final failures of a batch's items that no item activity could record. */
export interface RecordItemFailuresInput {
  batchId: string;
  failures: (FailedItem & { startedAt?: string })[];
}

/** What batchWorkflow and shardWorkflow return: the final state without the items (they are in the store). */
export type BatchSummary = Omit<BatchView, 'items' | 'nextCursor'> & {
  /** A shard's failed items, for its parent to aggregate (capped). */
  failures?: FailedItem[];
};

/** How a batch ended: its final status and summary, as its workflow's last step records it in the item store. */
export interface BatchEnd {
  status: Exclude<BatchStatus, 'running'>;
  summary: BatchSummary;
}
