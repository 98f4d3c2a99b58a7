import { z } from 'zod';
import { KServeDatatype } from './predict.js';

// The infer request and response of the Open Inference Protocol with Triton's binary tensor data extension: a
// tensor's values come either as JSON `data` or as raw bytes after the JSON, sized by `parameters.binary_data_size`.

/** The request header naming how many bytes of the body are JSON; the rest is binary tensor data. */
export const INFERENCE_HEADER = 'Inference-Header-Content-Length';

const Parameters = z.record(z.string(), z.unknown());

/** `binary_data_size`: the tensor's bytes follow the JSON (little-endian, row-major; BYTES length-prefixed). */
const BinaryDataSize = z.number().int().min(0);

/** One input tensor: `shape[0]` is the batch dimension; values in `data` (row-major, flat or nested) or binary. */
export const KServeInferInput = z
  .object({
    name: z.string().min(1),
    shape: z.array(z.number().int().min(0)).min(1, 'the first dimension is the batch dimension'),
    datatype: KServeDatatype,
    data: z.array(z.unknown()).optional(),
    parameters: Parameters.and(z.object({ binary_data_size: BinaryDataSize.optional() })).optional(),
  })
  .refine((i) => (i.data === undefined) !== (i.parameters?.binary_data_size === undefined), {
    message: 'an input has either data or parameters.binary_data_size, not both and not neither',
  });
export type KServeInferInput = z.infer<typeof KServeInferInput>;

/** An output wanted; `binary_data: true` asks for its values as bytes after the JSON. */
export const KServeInferOutputRequest = z.object({
  name: z.string().min(1),
  parameters: Parameters.and(z.object({ binary_data: z.boolean().optional() })).optional(),
});

/** `POST /v2/models/:name[/versions/:v]/infer` (the JSON part). Unknown fields are ignored, as other servers do. */
export const KServeInferBody = z
  .object({
    id: z.string().max(256).optional(),
    /** `binary_data_output: true` returns every output as binary unless the output says otherwise. */
    parameters: Parameters.and(z.object({ binary_data_output: z.boolean().optional() })).optional(),
    inputs: z.array(KServeInferInput).min(1),
    /** The outputs wanted (default all). */
    outputs: z.array(KServeInferOutputRequest).optional(),
  })
  .meta({ id: 'KServeInferRequest' });
export type KServeInferBody = z.infer<typeof KServeInferBody>;

/** One output tensor: the items' outputs stacked along the batch dimension, as JSON `data` or as binary. */
export const KServeInferOutput = z.object({
  name: z.string(),
  shape: z.array(z.number().int()),
  datatype: KServeDatatype,
  data: z.array(z.union([z.number(), z.string(), z.boolean()])).optional(),
  parameters: z.object({ binary_data_size: BinaryDataSize }).optional(),
});
export type KServeInferOutput = z.infer<typeof KServeInferOutput>;

/** The infer response (the JSON part, followed by the binary outputs' bytes when there are any). */
export const KServeInferResult = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    /** The request's id, or the task id when the request had none. */
    id: z.string(),
    outputs: z.array(KServeInferOutput),
  })
  .meta({ id: 'KServeInferResponse' });
export type KServeInferResult = z.infer<typeof KServeInferResult>;
