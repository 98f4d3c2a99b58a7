import type { KServeModelConfig } from '../contracts/kserve-extensions.js';
import type { TensorSignature } from '../contracts/predict.js';
import type { ResolvedModel } from '../runtime/model-repository.js';
import { DATATYPE, PLATFORM } from './kserve-tensors.js';
import { clientSignature } from './model-signature.js';

// A model's config.json as Triton's model configuration extension reports it. The tensors are the client's view
// (clientSignature), the one metadata and infer use: a text model takes `text` (TYPE_STRING), not token ids.

function tensor(t: TensorSignature): KServeModelConfig['input'][number] {
  const datatype = DATATYPE[t.dtype]!;
  const dataType = datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${datatype}`;
  // Triton has no empty dims: a scalar per row is [1], reshaped to [] for the model.
  if (t.shape.length === 0) return { name: t.name, data_type: dataType, dims: [1], reshape: { shape: [] } };
  return { name: t.name, data_type: dataType, dims: t.shape };
}

export function modelConfig(model: ResolvedModel): KServeModelConfig {
  const { inputs, outputs } = clientSignature(model.config);
  const { maxBatchSize, dynamicBatching } = model.config;
  return {
    name: model.name,
    platform: PLATFORM,
    backend: 'onnxruntime',
    max_batch_size: maxBatchSize,
    input: inputs.map(tensor),
    output: outputs.map(tensor),
    dynamic_batching: {
      preferred_batch_size: dynamicBatching.preferredBatchSizes,
      max_queue_delay_microseconds: Math.round(dynamicBatching.maxQueueDelayMs * 1000),
    },
    // Without a pinned version, the latest is served.
    version_policy: { latest: { num_versions: 1 } },
  };
}
