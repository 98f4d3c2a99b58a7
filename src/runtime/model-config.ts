import { z } from 'zod';

/** Element types a model tensor may have, as onnxruntime names them. */
export const TensorDtype = z.enum(['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'int64', 'bool']);
export type TensorDtype = z.infer<typeof TensorDtype>;

/** A tensor's shape for ONE item: the batch dimension is left out (Triton style); -1 marks a dynamic dimension. */
const Dims = z.array(z.number().int().min(-1).refine((d) => d !== 0, 'a dimension is -1 (dynamic) or positive'));

export const TensorSpec = z
  .object({
    name: z.string().min(1),
    dtype: TensorDtype,
    shape: Dims,
  })
  .strict();
export type TensorSpec = z.infer<typeof TensorSpec>;

/** `models/<name>/config.json`. */
export const ModelConfig = z
  .object({
    name: z.string().min(1),
    description: z.string().optional(),
    /** Largest batch the model takes in one run (default 64). */
    maxBatchSize: z.number().int().positive().default(64),
    dynamicBatching: z
      .object({
        /** Longest a request waits for others to share its run (default 2 ms). */
        maxQueueDelayMs: z.number().min(0).max(1000).default(2),
        preferredBatchSizes: z.array(z.number().int().positive()).default([]),
      })
      .strict()
      .default({ maxQueueDelayMs: 2, preferredBatchSizes: [] }),
    inputs: z.array(TensorSpec).min(1),
    outputs: z.array(TensorSpec).min(1),
    /** Class names, index-aligned with the classifier's scores. */
    labels: z.array(z.string()).optional(),
    postprocess: z
      .object({
        type: z.literal('classification'),
        /** The output holding one score per label. */
        scores: z.string().min(1),
        /** Apply softmax to the scores first (for logits). */
        softmax: z.boolean().default(false),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (cfg.postprocess) {
      const scores = cfg.outputs.find((o) => o.name === cfg.postprocess!.scores);
      if (!scores) {
        ctx.addIssue({ code: 'custom', path: ['postprocess', 'scores'], message: `no output named '${cfg.postprocess.scores}'` });
      }
      if (!cfg.labels) {
        ctx.addIssue({ code: 'custom', path: ['labels'], message: 'a classification model needs labels' });
      }
    }
  });
export type ModelConfig = z.infer<typeof ModelConfig>;
