import type { KServeInferBody, KServeInferInput } from '../contracts/kserve-infer.js';
import { KServeInferBody as KServeInferBodySchema, INFERENCE_HEADER } from '../contracts/kserve-infer.js';
import { InvalidRequestError } from '../errors.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from './json-depth.js';
import { decodeTensor } from './kserve-tensor-codec.js';
import { parseOrThrow } from './middleware/validate.js';

// An infer request's body as the binary tensor data extension has it: the first `Inference-Header-Content-Length`
// bytes are the JSON request (the whole body without that header), and the rest are the bytes of the inputs that
// carry `parameters.binary_data_size`, in the order of the inputs, with nothing before, between or after them.

/** An infer request whose every input has its values in `data` (decoded from binary where it came so). */
export type DecodedInferBody = Omit<KServeInferBody, 'inputs'> & { inputs: (KServeInferInput & { data: unknown[] })[] };

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * Parses an infer body: its JSON part against the schema, then each binary input's bytes against its shape and
 * datatype. Every way the parts can disagree is a 400 that says which part and by how much.
 */
export function parseInferBody(body: Buffer, headerLength: number | undefined): DecodedInferBody {
  const bad = (message: string): never => {
    throw new InvalidRequestError(message);
  };
  if (headerLength !== undefined && headerLength > body.length) {
    bad(`${INFERENCE_HEADER} is ${headerLength}, but the body has only ${body.length} bytes`);
  }
  const json = headerLength === undefined ? body : body.subarray(0, headerLength);
  const binary = headerLength === undefined ? Buffer.alloc(0) : body.subarray(headerLength);
  if (json.length === 0) bad('the body is empty: an inference request is a JSON object');
  if (jsonDepthExceeds(json)) bad(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch {
    bad(
      headerLength === undefined
        ? `request body is not valid JSON (binary tensor data needs the ${INFERENCE_HEADER} header)`
        : `the first ${headerLength} bytes of the body (${INFERENCE_HEADER}) are not valid JSON`,
    );
  }
  const request = parseOrThrow(KServeInferBodySchema, value, 'inference request');
  let at = 0;
  const inputs = request.inputs.map((input) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return input as KServeInferInput & { data: unknown[] };
    if (headerLength === undefined) {
      bad(`input '${input.name}' has binary_data_size, but the request has no ${INFERENCE_HEADER} header`);
    }
    if (at + size > binary.length) {
      bad(
        `input '${input.name}': binary_data_size ${size} goes past the end of the body ` +
          `(${binary.length - at} bytes of binary data left)`,
      );
    }
    const data = decodeTensor(input.name, input.datatype, binary.subarray(at, at + size), product(input.shape));
    at += size;
    return { ...input, data };
  });
  if (at !== binary.length) {
    bad(
      `the body has ${binary.length} bytes of binary data after the JSON, the inputs' binary_data_size add up to ${at}`,
    );
  }
  return { ...request, inputs };
}
