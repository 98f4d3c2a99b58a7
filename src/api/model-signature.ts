import type { ModelResource, TensorSignature } from '../contracts/predict.js';
import type { ModelConfig } from '../runtime/model-config.js';
import { TEXT_FIELD } from '../runtime/input-validation.js';

/** The element type a text model's `text` input has in the /v1 signature. */
export const TEXT_DTYPE = 'string';

/** The result field an embedding model's pooled vector is carried in (ItemResult.embedding). */
export const EMBEDDING_OUTPUT = 'embedding';

/**
 * A model's signature as clients see it, which is not always the ONNX file's: a text model takes
 * `{ text }` (its id tensors are the tokenizer's business), and an embedding model returns one pooled vector,
 * `embedding`, instead of its per-token output. /v1/models and the KServe metadata both describe this view,
 * so what they advertise is what /v1/predict and /v2 infer accept and return. Shapes are per item.
 */
export function clientSignature(config: ModelConfig): Pick<ModelResource, 'kind' | 'inputs' | 'outputs'> {
  const post = config.postprocess;
  const inputs: TensorSignature[] = config.tokenizer
    ? [{ name: TEXT_FIELD, dtype: TEXT_DTYPE, shape: [] }]
    : config.inputs.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
  const outputs: TensorSignature[] = config.outputs.map(({ name, dtype, shape }) =>
    post?.type === 'embedding' && name === post.output
      ? { name: EMBEDDING_OUTPUT, dtype: 'float32', shape: shape.slice(-1) }
      : { name, dtype, shape },
  );
  const kind = post?.type === 'classification' ? 'classifier' : post?.type === 'embedding' ? 'embedding' : 'tensor';
  return { kind, inputs, outputs };
}
