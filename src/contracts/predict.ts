import { z } from 'zod';
import { ItemError, ItemInputs, ItemResult, ModelName } from './batch.js';
import { queryNumber } from './batch-queries.js';
import { TaskId } from './ids.js';
import { OnTimeout } from './online-work.js';

// ---------------------------------------------------------------------------------------------------------------
// Online predictions (/v1/predict, /v1/predict/async, /v1/tasks/:taskId)
// ---------------------------------------------------------------------------------------------------------------

/** Lifecycle of an online prediction task. A closed set: `as const` plus a derived union. */
export const TaskStatus = {
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];

/** Where an online task came from; also the `source` label of prediction_requests_total. */
export const TaskSource = { sync: 'sync', async: 'async', kserve: 'kserve', openai: 'openai' } as const;
export type TaskSource = (typeof TaskSource)[keyof typeof TaskSource];

/** `POST /v1/predict/async`: one item of one model, with its inputs as for one batch item. */
export const PredictAsyncRequest = z
  .object({
    model: ModelName,
    /** A pinned version; the latest when omitted. */
    version: z.number().int().positive().optional(),
    inputs: ItemInputs,
  })
  .strict()
  .meta({ id: 'PredictAsyncRequest' });
export type PredictAsyncRequest = z.infer<typeof PredictAsyncRequest>;

/**
 * `POST /v1/predict`: as the async request, plus how long to wait for the result (default PREDICT_TIMEOUT_MS;
 * above PREDICT_MAX_TIMEOUT_MS is refused with 400), and what becomes of the task if the wait ends first.
 */
export const PredictRequest = PredictAsyncRequest.extend({
  timeoutMs: z.number().int().min(1).optional(),
  onTimeout: z
    .enum(OnTimeout)
    .default(OnTimeout.continue)
    .meta({
      description:
        'What becomes of the task if it is not done within `timeoutMs` (the 504): `continue` (default) lets it run, ' +
        'as async work behind fresh predictions if it had not started yet, and its result can be read from the task; ' +
        '`cancel` cancels it, and a task that had not started by then is never run.',
    }),
})
  .strict()
  .meta({ id: 'PredictRequest' });
export type PredictRequest = z.infer<typeof PredictRequest>;

/** Where a task's state is read. */
export const taskStatusUrl = (taskId: string): string => `/v1/tasks/${taskId}`;

/** 202 of `POST /v1/predict/async`: the task runs; poll `statusUrl`. */
export const TaskAcceptedResponse = z
  .object({
    taskId: TaskId,
    status: z.literal('running'),
    statusUrl: z.string(),
  })
  .meta({ id: 'TaskAcceptedResponse' });
export type TaskAcceptedResponse = z.infer<typeof TaskAcceptedResponse>;

/** 200 of `POST /v1/predict`: the result, ready within the timeout. */
export const PredictResponse = z
  .object({
    taskId: TaskId,
    status: z.literal('succeeded'),
    result: ItemResult,
  })
  .meta({ id: 'PredictResponse' });
export type PredictResponse = z.infer<typeof PredictResponse>;

/** 504 of `POST /v1/predict`: the house error shape plus the task, which goes on running. */
export const PredictTimeoutResponse = z
  .object({
    error: z.object({ code: z.literal('timeout'), message: z.string() }),
    taskId: TaskId,
    statusUrl: z.string(),
  })
  .meta({ id: 'PredictTimeoutResponse' });
export type PredictTimeoutResponse = z.infer<typeof PredictTimeoutResponse>;

/** `GET /v1/tasks/:taskId`: an online task's state, and its result once it has one. */
export const TaskResource = z
  .object({
    taskId: TaskId,
    status: z.enum(TaskStatus),
    source: z.enum(TaskSource),
    model: z.string(),
    /** The pinned version, if one was asked for; each result names the version that ran. */
    version: z.number().int().optional(),
    /** Items in the task: 1 for /v1/predict, the batch dimension for a KServe infer. */
    items: z.number().int(),
    createdAt: z.string(),
    finishedAt: z.string().optional(),
    /** A succeeded task of one item (every /v1/predict task). */
    result: ItemResult.optional(),
    /** A succeeded task of several items (a KServe infer with a batch dimension above 1), in request order. */
    results: z.array(ItemResult).optional(),
    /** A failed or canceled task: why. */
    error: ItemError.optional(),
    statusUrl: z.string(),
  })
  .meta({ id: 'TaskResource' });
export type TaskResource = z.infer<typeof TaskResource>;

/** `GET /v1/tasks`: how many of the tenant's most recent tasks. */
export const TaskListQuery = z.object({ limit: queryNumber(z.number().int().min(1).max(100)).default(20) }).strict();

/** `GET /v1/tasks`: the tenant's most recent online tasks (running first, then by close time), without results. */
export const TaskList = z.object({ tasks: z.array(TaskResource) }).meta({ id: 'TaskList' });
export type TaskList = z.infer<typeof TaskList>;

/** Input of predictWorkflow: one or more items of one model, inferred on the interactive task queue. */
export interface PredictWorkflowInput {
  taskId: string;
  model: string;
  version?: number;
  items: ItemInputs[];
  /**
   * Sync tasks (sync predict, KServe infer): how long after the workflow's start its caller's wait ends (ms). Counted
   * on the server's clock from the workflow's start time, so the hosts' clocks need not agree. A task that starts after
   * it runs as `onTimeout` says. Absent for async tasks, which have no caller waiting.
   */
  budgetMs?: number;
  onTimeout?: OnTimeout;
}

/** Input of the predict activity: the items themselves travel (they are small: one request's worth). */
export interface PredictActivityInput {
  model: string;
  version?: number;
  items: ItemInputs[];
  /** A sync task run after its caller's deadline: its items wait behind fresh online ones in the runtime too. */
  late?: boolean;
}

/** What predictWorkflow's memo carries: who owns the task, for the tenant check and the task view. */
export interface TaskMemo {
  tenant: string;
  source: TaskSource;
  model: string;
  version: number | null;
  items: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Models (/v1/models, /v1/models/:name)
// ---------------------------------------------------------------------------------------------------------------

/** One tensor as the /v1 API sees it: element type and the shape of ONE item (-1 marks a dynamic dimension). */
export const TensorSignature = z.object({
  name: z.string(),
  /** An onnxruntime element type, or `string` for a text model's `text` input. */
  dtype: z.string(),
  shape: z.array(z.number().int()),
});
export type TensorSignature = z.infer<typeof TensorSignature>;

/** `GET /v1/models/:name`: a model's signature, versions and labels. */
export const ModelResource = z
  .object({
    name: z.string(),
    description: z.string().optional(),
    /** Versions on disk, ascending. */
    versions: z.array(z.number().int()),
    /** The version used when a request pins none. */
    latest: z.number().int(),
    /** What a result carries: `label` and `probabilities`, an `embedding`, or only raw `outputs`. */
    kind: z.enum(['classifier', 'embedding', 'tensor']),
    /** What one item's `inputs` must hold. */
    inputs: z.array(TensorSignature),
    /** What one item's result holds, by output name (an embedding model's pooled vector is `embedding`). */
    outputs: z.array(TensorSignature),
    /** Classifiers: class names, index-aligned with `probabilities`. */
    labels: z.array(z.string()).optional(),
    /** Largest batch one model run takes; the dynamic batcher never exceeds it. */
    maxBatchSize: z.number().int(),
    links: z.object({ self: z.string(), kserve: z.string() }),
  })
  .meta({ id: 'ModelResource' });
export type ModelResource = z.infer<typeof ModelResource>;

/** `GET /v1/models`. */
export const ModelList = z.object({ models: z.array(ModelResource) }).meta({ id: 'ModelList' });
export type ModelList = z.infer<typeof ModelList>;

// ---------------------------------------------------------------------------------------------------------------
// Open Inference Protocol (KServe v2): /v2/models/:name[/versions/:v][/ready|/infer]
// ---------------------------------------------------------------------------------------------------------------

/** The protocol's tensor element types. */
export const KServeDatatype = z.enum([
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
]);
export type KServeDatatype = z.infer<typeof KServeDatatype>;

const KServeParameters = z.record(z.string(), z.unknown());

/** One input tensor of an infer request; `shape[0]` is the batch dimension, `data` row-major, flat or nested. */
export const KServeRequestInput = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().min(0)).min(1, 'the first dimension is the batch dimension'),
  datatype: KServeDatatype,
  data: z.array(z.unknown()),
  parameters: KServeParameters.optional(),
});

/** `POST /v2/models/:name[/versions/:v]/infer`. Unknown fields are ignored, as other servers do. */
export const KServeInferRequest = z
  .object({
    id: z.string().max(256).optional(),
    parameters: KServeParameters.optional(),
    inputs: z.array(KServeRequestInput).min(1),
    /** The outputs wanted (default all). */
    outputs: z.array(z.object({ name: z.string().min(1), parameters: KServeParameters.optional() })).optional(),
  })
  .meta({ id: 'KServeInferRequest' });
export type KServeInferRequest = z.infer<typeof KServeInferRequest>;

/** One output tensor of an infer response: the items' outputs stacked along the batch dimension, flat. */
export const KServeResponseOutput = z.object({
  name: z.string(),
  shape: z.array(z.number().int()),
  datatype: KServeDatatype,
  data: z.array(z.union([z.number(), z.string(), z.boolean()])),
});

export const KServeInferResponse = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    /** The request's id, or the task id when the request had none. */
    id: z.string(),
    outputs: z.array(KServeResponseOutput),
  })
  .meta({ id: 'KServeInferResponse' });
export type KServeInferResponse = z.infer<typeof KServeInferResponse>;

/** A tensor in model metadata; the first dimension (-1) is the batch dimension. */
export const KServeTensorMetadata = z.object({
  name: z.string(),
  datatype: KServeDatatype,
  shape: z.array(z.number().int()),
});
export type KServeTensorMetadata = z.infer<typeof KServeTensorMetadata>;

/** `GET /v2/models/:name[/versions/:v]`. */
export const KServeModelMetadata = z
  .object({
    name: z.string(),
    versions: z.array(z.string()),
    platform: z.string(),
    inputs: z.array(KServeTensorMetadata),
    outputs: z.array(KServeTensorMetadata),
  })
  .meta({ id: 'KServeModelMetadata' });
export type KServeModelMetadata = z.infer<typeof KServeModelMetadata>;

/** `GET /v2`: the server's name, version and protocol extensions. */
export const KServeServerMetadata = z
  .object({
    name: z.string(),
    version: z.string(),
    extensions: z.array(z.string()),
  })
  .meta({ id: 'KServeServerMetadata' });
export type KServeServerMetadata = z.infer<typeof KServeServerMetadata>;

/** `GET /v2/models/:name[/versions/:v]/ready` when the model is ready (200). */
export const KServeModelReady = z.object({ name: z.string(), ready: z.boolean() }).meta({ id: 'KServeModelReady' });
export type KServeModelReady = z.infer<typeof KServeModelReady>;

/** Every /v2 error: the protocol's own shape, so Triton and KServe clients parse it (504 also names the task). */
export const KServeErrorResponse = z
  .object({
    error: z.string(),
    taskId: z.string().optional(),
    statusUrl: z.string().optional(),
  })
  .meta({ id: 'KServeErrorResponse' });
export type KServeErrorResponse = z.infer<typeof KServeErrorResponse>;
