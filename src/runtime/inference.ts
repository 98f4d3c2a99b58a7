import ort from 'onnxruntime-node';
import type { ItemInputs, ItemResult } from '../contracts/batch.js';
import { ModelLoadError } from '../errors.js';
import { validateItemInputs, type ItemTensor } from './input-validation.js';
import type { ModelConfig, TensorDtype } from './model-config.js';
import type { ModelRepository, ResolvedModel } from './model-repository.js';

export interface InferenceOptions {
  /** Threads onnxruntime uses inside one operator (default 1: item-level parallelism comes from concurrency). */
  intraOpNumThreads?: number;
}

type TypedArrayCtor = new (data: ArrayLike<number> | number) => ArrayLike<number>;
const ARRAYS: Record<Exclude<TensorDtype, 'bool' | 'int64'>, TypedArrayCtor> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
};

/**
 * Runs models from a repository. One onnxruntime session per model version per process, created on first use,
 * warmed up once and shared; a file that fails to load is reported by name and retried on the next request.
 */
export class InferenceRuntime {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(
    readonly repository: ModelRepository,
    private readonly options: InferenceOptions = {},
  ) {}

  /** Validates one item's inputs, runs it, and returns its result (classifiers get label and probabilities). */
  async infer(model: string, version: number | undefined, inputs: ItemInputs): Promise<ItemResult> {
    const resolved = await this.repository.resolve(model, version);
    const tensors = validateItemInputs(resolved.config, inputs);
    const [result] = await this.run(resolved, [tensors]);
    return result!;
  }

  /** Runs validated items of one shape as one batch and splits the outputs back per item. */
  async run(model: ResolvedModel, items: Record<string, ItemTensor>[]): Promise<ItemResult[]> {
    const session = await this.session(model);
    const feeds: Record<string, ort.Tensor> = {};
    for (const spec of model.config.inputs) {
      const first = items[0]![spec.name]!;
      const per = first.data.length;
      const data = allocate(spec.dtype, per * items.length);
      items.forEach((item, i) => {
        const t = item[spec.name]!;
        if (t.data.length !== per) throw new Error(`items of one run must share a shape (input '${spec.name}')`);
        for (let j = 0; j < per; j++) (data as unknown as unknown[])[i * per + j] = convert(spec.dtype, t.data[j]!);
      });
      feeds[spec.name] = new ort.Tensor(spec.dtype, data as ort.Tensor.DataType, [items.length, ...first.dims]);
    }
    const out = await session.run(feeds);
    return items.map((_, i) => splitItem(model, out, i));
  }

  /** Releases every session (worker shutdown). */
  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((p) => p.then((s) => s.release()).catch(() => undefined)));
  }

  private session(model: ResolvedModel): Promise<ort.InferenceSession> {
    let pending = this.sessions.get(model.file);
    if (!pending) {
      pending = this.load(model);
      this.sessions.set(model.file, pending);
      pending.catch(() => this.sessions.delete(model.file));
    }
    return pending;
  }

  private async load(model: ResolvedModel): Promise<ort.InferenceSession> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(model.file, {
        intraOpNumThreads: this.options.intraOpNumThreads ?? 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw new ModelLoadError(model.file, (err as Error).message);
    }
    const missing = model.config.inputs.filter((s) => !session.inputNames.includes(s.name)).map((s) => s.name);
    if (missing.length > 0) {
      await session.release();
      throw new ModelLoadError(model.file, `config.json names inputs the model lacks: ${missing.join(', ')}`);
    }
    await warmUp(session, model.config);
    return session;
  }
}

function allocate(dtype: TensorDtype, n: number): ArrayLike<unknown> {
  if (dtype === 'bool') return new Uint8Array(n);
  if (dtype === 'int64') return new BigInt64Array(n);
  return new ARRAYS[dtype](n);
}

function convert(dtype: TensorDtype, v: number | boolean): number | bigint | boolean {
  if (dtype === 'int64') return BigInt(v as number);
  if (dtype === 'bool') return v ? 1 : 0;
  return v as number;
}

/** One zero-filled run so the first real item does not pay for lazy initialisation. */
async function warmUp(session: ort.InferenceSession, config: ModelConfig): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of config.inputs) {
    const dims = [1, ...spec.shape.map((d) => (d === -1 ? 1 : d))];
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[spec.name] = new ort.Tensor(spec.dtype, allocate(spec.dtype, n) as ort.Tensor.DataType, dims);
  }
  await session.run(feeds);
}

function splitItem(model: ResolvedModel, out: ort.InferenceSession.ReturnType, i: number): ItemResult {
  const outputs: ItemResult['outputs'] = {};
  for (const [name, tensor] of Object.entries(out)) {
    const per = tensor.dims.length > 1 ? tensor.dims.slice(1).reduce((a, b) => a * b, 1) : 1;
    const slice = Array.from(tensor.data as ArrayLike<number | bigint>).slice(i * per, (i + 1) * per).map(Number);
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
