import type { ItemInputs, ItemResult } from '../contracts/batch.js';
import { ModelLoadError } from '../errors.js';
import { DynamicBatcher } from './dynamic-batcher.js';
import { InferencePool, type InferencePoolOptions } from './inference-pool.js';
import type { OnnxSignature, WireTensor } from './inference-protocol.js';
import { validateItemInputs, type ItemTensor } from './input-validation.js';
import type { ModelConfig, TensorDtype, TensorSpec } from './model-config.js';
import type { ModelRepository, ResolvedModel } from './model-repository.js';

export interface InferenceOptions extends InferencePoolOptions {
  /** Coalesce concurrent items into batches (default true). Off: every item runs alone. */
  dynamicBatching?: boolean;
  /** Called with every batch run (metrics, tests). */
  onBatch?: (model: ResolvedModel, size: number) => void;
}

type TypedArrayCtor = new (n: number) => WireTensor['data'];
const ARRAYS: Record<TensorDtype, TypedArrayCtor> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
};

/**
 * Runs models from a repository, off the event loop: sessions live in a pool of worker threads (created once per
 * model version per thread, warmed up, shared by every request), and concurrent items are coalesced into batches
 * by the dynamic batcher. A model file that fails to load is reported by name and retried on the next request.
 */
export class InferenceRuntime {
  readonly pool: InferencePool;
  private readonly batcher: DynamicBatcher | undefined;
  private readonly loaded = new Map<string, Promise<void>>();

  constructor(
    readonly repository: ModelRepository,
    options: InferenceOptions = {},
  ) {
    this.pool = new InferencePool(options);
    const runner = (model: ResolvedModel, items: Record<string, ItemTensor>[]) => this.run(model, items);
    this.batcher =
      options.dynamicBatching === false
        ? undefined
        : new DynamicBatcher(runner, { maxInFlight: this.pool.size, onBatch: options.onBatch });
    if (!this.batcher && options.onBatch) {
      const onBatch = options.onBatch;
      const plain = this.run.bind(this);
      this.run = async (model, items) => {
        onBatch(model, items.length);
        return plain(model, items);
      };
    }
  }

  /** Validates one item's inputs, runs it (batched with concurrent items), and returns its result. */
  async infer(model: string, version: number | undefined, inputs: ItemInputs): Promise<ItemResult> {
    const resolved = await this.repository.resolve(model, version);
    const tensors = validateItemInputs(resolved.config, inputs);
    await this.ensureLoaded(resolved);
    if (this.batcher) return this.batcher.submit(resolved, tensors);
    const [result] = await this.run(resolved, [tensors]);
    return result!;
  }

  /** Runs validated items of one shape as one batch on the pool and splits the outputs back per item. */
  async run(model: ResolvedModel, items: Record<string, ItemTensor>[]): Promise<ItemResult[]> {
    await this.ensureLoaded(model);
    const feeds: WireTensor[] = model.config.inputs.map((spec) => {
      const first = items[0]![spec.name]!;
      const per = first.data.length;
      const data = new ARRAYS[spec.dtype](per * items.length);
      const target = data as unknown as { [i: number]: number | bigint };
      items.forEach((item, i) => {
        const t = item[spec.name]!;
        if (t.dims.join() !== first.dims.join()) throw new Error(`items of one run must share a shape (input '${spec.name}')`);
        for (let j = 0; j < per; j++) target[i * per + j] = convert(spec.dtype, t.data[j]!);
      });
      return { name: spec.name, dtype: spec.dtype, data, dims: [items.length, ...first.dims] };
    });
    const outputs = await this.pool.run(model.file, feeds);
    return items.map((_, i) => splitItem(model, outputs, i));
  }

  /** Stops the inference threads (worker shutdown). */
  async close(): Promise<void> {
    await this.pool.close();
  }

  /** Creates and warms the model's session on every thread once; checks config.json against the real model. */
  private ensureLoaded(model: ResolvedModel): Promise<void> {
    let pending = this.loaded.get(model.file);
    if (!pending) {
      pending = this.pool.load(model.file).then((signature) => {
        const problems = signatureMismatches(model.config, signature);
        if (problems.length > 0) throw new ModelLoadError(model.file, `config.json disagrees with the model: ${problems.join('; ')}`);
      });
      this.loaded.set(model.file, pending);
      pending.catch(() => this.loaded.delete(model.file));
    }
    return pending;
  }
}

/**
 * Where config.json contradicts the ONNX file: a declared tensor the model lacks, another dtype, or a fixed
 * dimension the model fixes differently (config shapes leave out the batch dimension, ONNX shapes include it).
 */
export function signatureMismatches(config: ModelConfig, signature: OnnxSignature): string[] {
  const problems: string[] = [];
  const check = (kind: 'input' | 'output', specs: TensorSpec[], actual: OnnxSignature['inputs']) => {
    for (const spec of specs) {
      const m = actual.find((a) => a.name === spec.name);
      if (!m) {
        problems.push(`the model has no ${kind} '${spec.name}' (${kind}s: ${actual.map((a) => a.name).join(', ')})`);
        continue;
      }
      if (m.type !== spec.dtype) problems.push(`${kind} '${spec.name}' is ${m.type}, not ${spec.dtype}`);
      const dims = m.shape.slice(1);
      if (dims.length !== spec.shape.length) {
        problems.push(`${kind} '${spec.name}' has shape [${m.shape.join(', ')}] (batch first), not [batch, ${spec.shape.join(', ')}]`);
        continue;
      }
      spec.shape.forEach((d, i) => {
        const actualDim = dims[i];
        if (d !== -1 && typeof actualDim === 'number' && actualDim > 0 && actualDim !== d) {
          problems.push(`${kind} '${spec.name}' dimension ${i} is ${actualDim}, not ${d}`);
        }
      });
    }
  };
  check('input', config.inputs, signature.inputs);
  check('output', config.outputs, signature.outputs);
  return problems;
}

function convert(dtype: TensorDtype, v: number | boolean): number | bigint {
  if (dtype === 'int64') return BigInt(v as number);
  if (dtype === 'bool') return v ? 1 : 0;
  return v as number;
}

function splitItem(model: ResolvedModel, out: WireTensor[], i: number): ItemResult {
  const outputs: ItemResult['outputs'] = {};
  for (const tensor of out) {
    const name = tensor.name;
    const per = tensor.dims.length > 1 ? tensor.dims.slice(1).reduce((a, b) => a * b, 1) : 1;
    const slice = Array.from((tensor.data as ArrayLike<number | bigint> & { subarray(a: number, b: number): ArrayLike<number | bigint> }).subarray(i * per, (i + 1) * per), Number);
    outputs[name] = tensor.dims.length > 1 ? slice : slice[0]!;
  }
  const result: ItemResult = { model: model.name, version: model.version, outputs };
  const post = model.config.postprocess;
  if (post) {
    const raw = outputs[post.scores];
    const scores = (Array.isArray(raw) ? raw : [raw]) as number[];
    const probabilities = post.softmax ? softmax(scores) : scores;
    let best = 0;
    for (let k = 1; k < probabilities.length; k++) if (probabilities[k]! > probabilities[best]!) best = k;
    result.label = model.config.labels![best] ?? String(best);
    result.probabilities = probabilities;
    delete outputs[post.scores]; // carried once, as probabilities
  }
  return result;
}

function softmax(xs: number[]): number[] {
  const max = Math.max(...xs);
  const exps = xs.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
