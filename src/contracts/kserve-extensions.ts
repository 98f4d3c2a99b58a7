import { z } from 'zod';

// The Triton protocol extensions batchline serves besides infer: model configuration, statistics and the
// repository index, in the shapes Triton answers them, so its clients (tritonclient) read them unchanged.

/** One tensor of a model configuration; `dims` leave out the batch dimension, a scalar is `[1]` reshaped to `[]`. */
const ModelConfigTensor = z.object({
  name: z.string(),
  data_type: z.string().meta({ description: 'TYPE_FP32, TYPE_INT64, TYPE_STRING (BYTES), ...' }),
  dims: z.array(z.number().int()),
  reshape: z.object({ shape: z.array(z.number().int()) }).optional(),
});

/** `GET /v2/models/:name[/versions/:v]/config`: the model's config.json as a Triton model configuration. */
export const KServeModelConfig = z
  .object({
    name: z.string(),
    platform: z.string(),
    backend: z.string(),
    max_batch_size: z.number().int(),
    input: z.array(ModelConfigTensor),
    output: z.array(ModelConfigTensor),
    dynamic_batching: z.object({
      preferred_batch_size: z.array(z.number().int()),
      max_queue_delay_microseconds: z.number().int(),
    }),
    version_policy: z.object({ latest: z.object({ num_versions: z.number().int() }) }),
  })
  .meta({ id: 'KServeModelConfig' });
export type KServeModelConfig = z.infer<typeof KServeModelConfig>;

/** A count and the nanoseconds they took together. */
const Duration = z.object({ count: z.number().int(), ns: z.number().int() });
export type Duration = z.infer<typeof Duration>;

/** One model version's statistics, as this API process counted its /v2 infer requests (docs/api.md). */
export const KServeModelStat = z.object({
  name: z.string(),
  version: z.string(),
  /** When the last successful request finished, in ms since the epoch; 0 before any. */
  last_inference: z.number().int(),
  /** Rows (the batch dimension) of successful requests. */
  inference_count: z.number().int(),
  /** Successful requests: each ran as one task. */
  execution_count: z.number().int(),
  inference_stats: z.object({
    success: Duration,
    fail: Duration,
    queue: Duration,
    compute_input: Duration,
    compute_infer: Duration,
    compute_output: Duration,
    cache_hit: Duration,
    cache_miss: Duration,
  }),
  batch_stats: z.array(z.unknown()),
});
export type KServeModelStat = z.infer<typeof KServeModelStat>;

/** `GET /v2/models[/:name[/versions/:v]]/stats`. */
export const KServeModelStatistics = z
  .object({ model_stats: z.array(KServeModelStat) })
  .meta({ id: 'KServeModelStatistics' });
export type KServeModelStatistics = z.infer<typeof KServeModelStatistics>;

/** `POST /v2/repository/index`: every model version in the repository and whether it can serve. */
export const KServeRepositoryIndex = z
  .array(
    z.object({
      name: z.string(),
      version: z.string().optional(),
      state: z.enum(['READY', 'UNAVAILABLE']),
      reason: z.string(),
    }),
  )
  .meta({ id: 'KServeRepositoryIndex' });
export type KServeRepositoryIndex = z.infer<typeof KServeRepositoryIndex>;
