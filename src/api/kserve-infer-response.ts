import type { Response } from 'express';
import { INFERENCE_HEADER, type KServeInferOutput, type KServeInferResult } from '../contracts/kserve-infer.js';
import { encodeTensor } from './kserve-tensor-codec.js';
import type { DecodedInferBody } from './kserve-infer-request.js';

// The infer response with the binary tensor data extension: outputs asked for as binary carry
// `parameters.binary_data_size` instead of `data`, and their bytes follow the JSON in the order of the outputs;
// `Inference-Header-Content-Length` says where the JSON ends. Without binary outputs the response is plain JSON.

/** Whether the request wants output `name` as binary: its own `binary_data`, else the request's `binary_data_output`. */
export function wantsBinary(request: DecodedInferBody, name: string): boolean {
  const own = request.outputs?.find((o) => o.name === name)?.parameters?.binary_data;
  return own ?? request.parameters?.binary_data_output === true;
}

/** A response whose outputs all carry `data`, before the binary ones are taken out of the JSON. */
export type InferResult = Omit<KServeInferResult, 'outputs'> & {
  outputs: (KServeInferOutput & { data: NonNullable<KServeInferOutput['data']> })[];
};

/** The response as bytes: the JSON part, and the binary outputs' bytes after it (none when no output is binary). */
export function encodeInferResponse(
  result: InferResult,
  binary: (name: string) => boolean,
): { json: Buffer; tail: Buffer[] } {
  const tail: Buffer[] = [];
  const outputs = result.outputs.map((output): KServeInferOutput => {
    if (!binary(output.name)) return output;
    const bytes = encodeTensor(output.datatype, output.data);
    tail.push(bytes);
    const { data: _data, ...rest } = output;
    return { ...rest, parameters: { binary_data_size: bytes.length } };
  });
  return { json: Buffer.from(JSON.stringify({ ...result, outputs } satisfies KServeInferResult)), tail };
}

/** Sends the response: JSON, or with binary outputs the JSON, its length header and the bytes. */
export function sendInferResponse(res: Response, result: InferResult, binary: (name: string) => boolean): void {
  const { json, tail } = encodeInferResponse(result, binary);
  if (tail.length === 0) {
    res.type('application/json').send(json);
    return;
  }
  res.setHeader(INFERENCE_HEADER, String(json.length));
  res.type('application/octet-stream').send(Buffer.concat([json, ...tail]));
}
