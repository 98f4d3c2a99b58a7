import { z } from 'zod';

/** Element types a model tensor may have, as onnxruntime names them. */
export const TensorDtype = z.enum(['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'int64', 'bool']);
export type TensorDtype = z.infer<typeof TensorDtype>;

/** A tensor's shape for ONE item: the batch dimension is left out (Triton style); -1 marks a dynamic dimension. */
const Dims = z.array(
  z
    .number()
    .int()
    .min(-1)
    .refine((d) => d !== 0, 'a dimension is -1 (dynamic) or positive'),
);

export const TensorSpec = z
  .object({
    name: z.string().min(1),
    dtype: TensorDtype,
    shape: Dims,
  })
  .strict();
export type TensorSpec = z.infer<typeof TensorSpec>;

/**
 * The run timeout of a model whose config.json sets none: INFERENCE_RUN_TIMEOUT_MS's default, and the inference
 * pool's when it is given none. Below the default itemTimeoutMs, so a hung run is reported as InferenceTimeout and
 * retried before the item's attempt itself times out.
 */
export const DEFAULT_RUN_TIMEOUT_MS = 30_000;

/** The id tensors a tokenizer fills, by their conventional (BERT) names. */
export const TEXT_IDS = 'input_ids';
export const TEXT_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'];

/** `models/<name>/config.json`. */
export const ModelConfig = z
  .object({
    name: z.string().min(1),
    description: z.string().optional(),
    /** Largest batch the model takes in one run (default 64). */
    maxBatchSize: z.number().int().positive().default(64),
    /**
     * Longest one run of this model may take on its inference thread, from the moment the thread is handed the run
     * (so waiting behind another run on that thread counts). Past it the thread is replaced, and every run it held
     * fails retryably as InferenceTimeout. Default: the worker's INFERENCE_RUN_TIMEOUT_MS.
     */
    runTimeoutMs: z.number().int().min(1).max(3_600_000).optional(),
    dynamicBatching: z
      .object({
        /**
         * Longest an item waits for others to share its run while a run slot is free (default 0: go as soon as a
         * slot is free; items that arrive while every slot is busy still form one batch).
         */
        maxQueueDelayMs: z.number().min(0).max(1000).default(0),
        /**
         * Batch sizes the model runs best at (Triton's preferred_batch_size): a run takes the largest of them the
         * waiting items can fill, else everything waiting up to maxBatchSize. Empty (the default): as large as
         * possible.
         */
        preferredBatchSizes: z.array(z.number().int().positive()).default([]),
      })
      .strict()
      .default({ maxQueueDelayMs: 0, preferredBatchSizes: [] }),
    inputs: z.array(TensorSpec).min(1),
    outputs: z.array(TensorSpec).min(1),
    /** Class names, index-aligned with the classifier's scores. */
    labels: z.array(z.string()).optional(),
    /**
     * Text models: items send `{ "text": "..." }`; this tokenizer (Hugging Face tokenizer.json in the version
     * directory) turns it into the model's id tensors, truncated to maxLength tokens.
     */
    tokenizer: z
      .object({
        file: z.string().min(1).default('tokenizer.json'),
        configFile: z.string().min(1).default('tokenizer_config.json'),
        maxLength: z.number().int().min(2).max(8192).default(256),
        /** Longest text accepted, in characters (default 20,000). */
        maxChars: z.number().int().positive().default(20_000),
      })
      .strict()
      .optional(),
    postprocess: z
      .discriminatedUnion('type', [
        z
          .object({
            type: z.literal('classification'),
            /** The output holding one score per label. */
            scores: z.string().min(1),
            /** Apply softmax to the scores first (for logits). */
            softmax: z.boolean().default(false),
          })
          .strict(),
        z
          .object({
            type: z.literal('embedding'),
            /** The output holding one vector per token, [tokens, dim]. */
            output: z.string().min(1),
            /** Mean over the tokens the attention mask keeps, or the first token's vector. */
            pooling: z.enum(['mean', 'cls']).default('mean'),
            /** Scale the vector to unit length. */
            normalize: z.boolean().default(true),
          })
          .strict(),
      ])
      .optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const post = cfg.postprocess;
    if (post?.type === 'classification') {
      if (!cfg.outputs.some((o) => o.name === post.scores)) {
        ctx.addIssue({ code: 'custom', path: ['postprocess', 'scores'], message: `no output named '${post.scores}'` });
      }
      if (!cfg.labels) {
        ctx.addIssue({ code: 'custom', path: ['labels'], message: 'a classification model needs labels' });
      }
    }
    cfg.dynamicBatching.preferredBatchSizes.forEach((size, i) => {
      if (size > cfg.maxBatchSize) {
        ctx.addIssue({
          code: 'custom',
          path: ['dynamicBatching', 'preferredBatchSizes', i],
          message: `preferred batch size ${size} is larger than maxBatchSize (${cfg.maxBatchSize})`,
        });
      }
    });
    if (post?.type === 'embedding' && !cfg.outputs.some((o) => o.name === post.output)) {
      ctx.addIssue({ code: 'custom', path: ['postprocess', 'output'], message: `no output named '${post.output}'` });
    }
    if (cfg.tokenizer) {
      const names = cfg.inputs.map((i) => i.name);
      if (!names.includes(TEXT_IDS) || cfg.inputs.some((i) => !TEXT_INPUTS.includes(i.name) || i.dtype !== 'int64')) {
        ctx.addIssue({
          code: 'custom',
          path: ['inputs'],
          message: `a tokenized model takes int64 inputs among ${TEXT_INPUTS.join(', ')}, including ${TEXT_IDS}`,
        });
      }
    }
  });
export type ModelConfig = z.infer<typeof ModelConfig>;
