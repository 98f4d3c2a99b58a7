import type { ItemInputs, ItemResult } from '../contracts/batch.js';
import type {
  KServeDatatype,
  KServeModelMetadata,
  KServeTensorMetadata,
  TensorSignature,
} from '../contracts/predict.js';
import { InvalidRequestError } from '../errors.js';
import { checkItemInputs } from '../runtime/input-validation.js';
import type { ResolvedModel } from '../runtime/model-repository.js';
import type { DecodedInferBody } from './kserve-infer-request.js';
import type { InferResult } from './kserve-infer-response.js';
import { clientSignature, EMBEDDING_OUTPUT, TEXT_DTYPE } from './model-signature.js';

// Tensors of the Open Inference Protocol and the /v1 items they stand for: a request's inputs split along the
// batch dimension into items, and the items' results stacked back into output tensors.

/** What the metadata endpoint calls the backend, as Triton does for ONNX models. */
export const PLATFORM = 'onnxruntime_onnx';

/** The protocol's datatype of each element type a signature uses. */
export const DATATYPE: Record<string, KServeDatatype> = {
  float32: 'FP32',
  float64: 'FP64',
  int8: 'INT8',
  uint8: 'UINT8',
  int16: 'INT16',
  uint16: 'UINT16',
  int32: 'INT32',
  int64: 'INT64',
  bool: 'BOOL',
  [TEXT_DTYPE]: 'BYTES',
};

function tensorMetadata(t: TensorSignature): KServeTensorMetadata {
  return { name: t.name, datatype: DATATYPE[t.dtype]!, shape: [-1, ...t.shape] };
}

export function modelMetadata(model: ResolvedModel): KServeModelMetadata {
  const { inputs, outputs } = clientSignature(model.config);
  return {
    name: model.name,
    versions: model.versions.map(String),
    platform: PLATFORM,
    inputs: inputs.map(tensorMetadata),
    outputs: outputs.map(tensorMetadata),
  };
}

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * Splits the request's tensors along their first dimension into one item per row, in the /v1 item form
 * (`{ <input>: values }`, or `{ text }` for a text model), and checks every item against the model with the
 * validator the API and the activity share, so a bad row is refused before anything starts.
 */
export function toItems(model: ResolvedModel, specs: TensorSignature[], body: DecodedInferBody): ItemInputs[] {
  const bad = (message: string): never => {
    throw new InvalidRequestError(message);
  };
  const seen = new Set<string>();
  for (const input of body.inputs) {
    if (seen.has(input.name)) bad(`input '${input.name}' is given twice`);
    seen.add(input.name);
    if (!specs.some((s) => s.name === input.name)) {
      bad(`model '${model.name}' has no input '${input.name}' (inputs: ${specs.map((s) => s.name).join(', ')})`);
    }
  }
  let rows: number | undefined;
  const columns = specs.map((spec) => {
    const input = body.inputs.find((i) => i.name === spec.name) ?? bad(`missing input '${spec.name}'`);
    const datatype = DATATYPE[spec.dtype]!;
    if (input.datatype !== datatype) bad(`input '${spec.name}': datatype ${input.datatype}, expected ${datatype}`);
    const [batch, ...dims] = input.shape as [number, ...number[]];
    if (rows !== undefined && batch !== rows)
      bad(`input '${spec.name}': batch dimension ${batch}, other inputs have ${rows}`);
    rows = batch;
    const flat = input.data.flat(Infinity);
    if (flat.length !== product(input.shape)) {
      bad(
        `input '${spec.name}': shape [${input.shape.join(', ')}] holds ${product(input.shape)} values, data has ${flat.length}`,
      );
    }
    if (spec.dtype === TEXT_DTYPE && product(dims) !== 1)
      bad(`input '${spec.name}': one string per row, shape [batch] or [batch, 1]`);
    return { spec, dims, flat };
  });
  if (!rows) bad('the batch dimension is 0: nothing to infer');
  if (rows! > model.config.maxBatchSize)
    bad(`batch dimension ${rows} exceeds model '${model.name}' maxBatchSize ${model.config.maxBatchSize}`);
  return Array.from({ length: rows! }, (_, row) => {
    const item: ItemInputs = {};
    for (const { spec, dims, flat } of columns) {
      const per = product(dims);
      const values = flat.slice(row * per, (row + 1) * per);
      item[spec.name] = spec.shape.length === 0 ? values[0] : nest(values, dims);
    }
    try {
      checkItemInputs(model.config, item);
    } catch (err) {
      if (err instanceof InvalidRequestError) bad(`row ${row}: ${err.message}`);
      throw err;
    }
    return item;
  });
}

/** Row-major values shaped into nested arrays of `dims` (the item form input validation checks dims in). */
function nest(values: unknown[], dims: number[]): unknown[] {
  if (dims.length <= 1) return values;
  const per = product(dims.slice(1));
  return Array.from({ length: dims[0]! }, (_, i) => nest(values.slice(i * per, (i + 1) * per), dims.slice(1)));
}

/**
 * The outputs the request asks for (all when it names none); an unknown name is 400, and so is the classification
 * extension, which this server does not implement (an answer in another form than asked would be wrong silently).
 */
export function pickOutputs(outputs: TensorSignature[], body: DecodedInferBody): TensorSignature[] {
  if (!body.outputs || body.outputs.length === 0) return outputs;
  const classified = body.outputs.find((o) => o.parameters?.classification !== undefined);
  if (classified) {
    throw new InvalidRequestError(
      `output '${classified.name}': the classification extension is not supported; ask for the scores and rank them`,
    );
  }
  return body.outputs.map(
    ({ name }) =>
      outputs.find((o) => o.name === name) ??
      (() => {
        throw new InvalidRequestError(`no output '${name}' (outputs: ${outputs.map((o) => o.name).join(', ')})`);
      })(),
  );
}

/** One output's values for one item, flat: classifier scores come back as `probabilities`, vectors as `embedding`. */
function itemOutput(model: ResolvedModel, name: string, result: ItemResult): number[] {
  const post = model.config.postprocess;
  const value =
    post?.type === 'classification' && name === post.scores
      ? result.probabilities
      : post?.type === 'embedding' && name === EMBEDDING_OUTPUT
        ? result.embedding
        : result.outputs[name];
  if (value === undefined) throw new Error(`model '${model.name}' returned no output '${name}'`);
  return (Array.isArray(value) ? value.flat(Infinity) : [value]) as number[];
}

/** Stacks the items' values of one output along a new first (batch) dimension, row-major and flat. */
export function stack(
  model: ResolvedModel,
  spec: TensorSignature,
  results: ItemResult[],
): InferResult['outputs'][number] {
  const rows = results.map((r) => itemOutput(model, spec.name, r));
  const per = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== per)) throw new Error(`output '${spec.name}' differs in size between items`);
  const fixed = product(spec.shape.filter((d) => d !== -1));
  const dims = spec.shape.map((d) => (d === -1 ? per / fixed : d));
  const data = rows.flat();
  return { name: spec.name, shape: [results.length, ...dims], datatype: DATATYPE[spec.dtype]!, data };
}
