import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { ItemInputs, ItemResult } from '../contracts/batch.js';
import { ModelLoadError } from '../errors.js';
import { DynamicBatcher, shapeKey, tokenCount, type ItemOutcome, type Priority } from './dynamic-batcher.js';
import { InferencePool, type InferencePoolOptions } from './inference-pool.js';
import { typedArrayFor, type OnnxSignature, type WireTensor } from './inference-protocol.js';
import { validateItemInputs, validateTextInput, type ItemTensor } from './input-validation.js';
import type { ModelConfig, TensorDtype, TensorSpec } from './model-config.js';
import type { ModelRepository, ResolvedModel } from './model-repository.js';
import { nonFiniteOutput, splitItem } from './postprocess.js';
import { TextTokenizers } from './text-tokenizer.js';

/** Takes one run's outcomes (InferenceRuntime.inferMany): the items' positions in the input, and each one's outcome. */
export type RunHandler = (positions: number[], outcomes: ItemOutcome[]) => Promise<void>;

export interface InferenceOptions extends InferencePoolOptions {
  /** Coalesce concurrent items into batches (default true). Off: every item runs alone. */
  dynamicBatching?: boolean;
  /** Called with every batch run (tests). */
  onBatch?: (model: ResolvedModel, size: number) => void;
  /** Model-call latency and batch-size histograms are observed here. */
  metrics?: Pick<Metrics, 'inferenceLatency' | 'inferenceBatchSize'>;
}

/**
 * The runtime options a worker's configuration sets (threads, ORT's, dynamic batching, the run timeout): the worker's
 * and every bench system that runs the same work (the store ceiling, the BullMQ and graphile-worker peers) use them.
 */
export function runtimeOptions(
  config: Pick<
    Config,
    | 'INFERENCE_THREADS'
    | 'ORT_INTRA_OP_THREADS'
    | 'ORT_ALLOW_SPINNING'
    | 'DYNAMIC_BATCHING'
    | 'INFERENCE_RUN_TIMEOUT_MS'
  >,
): InferenceOptions {
  return {
    threads: config.INFERENCE_THREADS,
    intraOpNumThreads: config.ORT_INTRA_OP_THREADS,
    allowSpinning: config.ORT_ALLOW_SPINNING,
    dynamicBatching: config.DYNAMIC_BATCHING,
    runTimeoutMs: config.INFERENCE_RUN_TIMEOUT_MS,
  };
}

/**
 * Runs models from a repository, off the event loop: sessions live in a pool of worker threads (created once per
 * model version per thread, warmed up, shared by every request), and concurrent items are coalesced into batches
 * by the dynamic batcher. Text models are tokenized here and padded per batch. A model file that fails to load
 * is reported by name and retried on the next request.
 */
export class InferenceRuntime {
  readonly pool: InferencePool;
  private readonly batcher: DynamicBatcher;
  private readonly tokenizers = new TextTokenizers();
  private readonly loaded = new Map<string, Promise<void>>();
  /** Dynamic batching on (default): a chunk's items share runs. */
  private readonly coalesce: boolean;

  constructor(
    readonly repository: ModelRepository,
    options: InferenceOptions = {},
  ) {
    this.pool = new InferencePool(options);
    this.coalesce = options.dynamicBatching ?? true;
    const metrics = options.metrics;
    this.batcher = new DynamicBatcher(
      async (model, items) => {
        if (!metrics) return this.runEach(model, items);
        const stop = metrics.inferenceLatency.startTimer({ model: model.name });
        metrics.inferenceBatchSize.observe({ model: model.name }, items.length);
        try {
          return await this.runEach(model, items);
        } finally {
          stop();
        }
      },
      {
        maxInFlight: this.pool.size,
        coalesce: options.dynamicBatching ?? true,
        onBatch: options.onBatch,
      },
    );
  }

  /**
   * Validates one item's inputs, runs it (batched with concurrent items of its priority), and returns its result.
   * Online predictions pass 'interactive': they go ahead of batch items (see DynamicBatcher).
   */
  async infer(
    model: string,
    version: number | undefined,
    inputs: ItemInputs,
    priority: Priority = 'batch',
  ): Promise<ItemResult> {
    const resolved = await this.repository.resolve(model, version);
    const tensors = resolved.config.tokenizer
      ? await this.tokenizers.encode(resolved, validateTextInput(resolved.config, inputs))
      : validateItemInputs(resolved.config, inputs);
    await this.ensureLoaded(resolved);
    return this.batcher.submit(resolved, tensors, priority);
  }

  /**
   * Infers many items of one model version together (a chunk of a batch) and hands `onRun` each run's outcomes as
   * soon as they are known, so its caller stores them run by run; every position gets exactly one outcome. The
   * model is resolved and loaded once and every item validated: an invalid item fails alone, and an unknown model
   * or a model file that cannot load fails every item with its error. The valid items go as ready-made runs
   * (formRuns: one shape, text items of one length bucket, shortest first; one item per run when dynamic batching
   * is off) through the batcher's run slots, behind no queue delay; a run that fails is retried item by item
   * (DynamicBatcher), so one bad item fails alone. Each outcome is an item's result or the Error that fails it.
   * Resolves once `onRun` has settled for every run; if one rejected, rejects with the first error then (never
   * while runs are still being handed over).
   */
  async inferMany(model: string, version: number | undefined, inputs: ItemInputs[], onRun: RunHandler): Promise<void> {
    const all = inputs.map((_, position) => position);
    const handed: Promise<void>[] = [];
    let failed: { error: unknown } | undefined;
    // Handled as soon as handed over: one that rejects while the model loads must not go unhandled meanwhile.
    const hand = (positions: number[], outcomes: ItemOutcome[] | Promise<ItemOutcome[]>) =>
      handed.push(
        Promise.resolve(outcomes)
          .then((settled) => onRun(positions, settled))
          .catch((error: unknown) => {
            failed ??= { error };
          }),
      );
    let resolved: ResolvedModel | undefined;
    try {
      resolved = await this.repository.resolve(model, version);
    } catch (err) {
      hand(
        all,
        all.map(() => asError(err)),
      ); // an unknown model or version
    }
    if (resolved) {
      const valid: { position: number; tensors: Record<string, ItemTensor> }[] = [];
      const invalid: number[] = [];
      const errors: ItemOutcome[] = [];
      for (const position of all) {
        try {
          const tensors = resolved.config.tokenizer
            ? await this.tokenizers.encode(resolved, validateTextInput(resolved.config, inputs[position]!))
            : validateItemInputs(resolved.config, inputs[position]!);
          valid.push({ position, tensors });
        } catch (err) {
          invalid.push(position);
          errors.push(asError(err));
        }
      }
      if (invalid.length > 0) hand(invalid, errors);
      const loadError = valid.length > 0 ? await this.ensureLoaded(resolved).then(() => undefined, asError) : undefined;
      if (loadError) {
        hand(
          valid.map((v) => v.position),
          valid.map(() => loadError),
        );
      } else {
        for (const run of formRuns(resolved, valid, this.coalesce)) {
          const outcomes = this.batcher.submitRun(
            resolved,
            run.map((v) => v.tensors),
          );
          hand(
            run.map((v) => v.position),
            Promise.all(outcomes.map((o) => o.catch(asError))),
          );
        }
      }
    }
    await Promise.all(handed);
    if (failed) throw failed.error;
  }

  /**
   * Runs validated items as one batch on the pool and splits the outputs back per item. Items must share a
   * shape, except a text model's token axis, which is right-padded with zeros to the batch's longest item.
   * Rejects with NonFiniteOutputError if any item's result holds NaN or an infinity.
   */
  async run(model: ResolvedModel, items: Record<string, ItemTensor>[]): Promise<ItemResult[]> {
    const outcomes = await this.runEach(model, items);
    const failed = outcomes.find((o) => o instanceof Error);
    if (failed) throw failed;
    return outcomes as ItemResult[];
  }

  /**
   * run(), with each item's own outcome: its result, or a NonFiniteOutputError for an item whose result holds NaN
   * or an infinity, so that item fails without failing (or re-running) its neighbours.
   */
  private async runEach(model: ResolvedModel, items: Record<string, ItemTensor>[]): Promise<ItemOutcome[]> {
    await this.ensureLoaded(model);
    const padded = Boolean(model.config.tokenizer);
    const feeds: WireTensor[] = model.config.inputs.map((spec) => {
      const first = items[0]![spec.name]!;
      const dims = padded ? [Math.max(...items.map((it) => it[spec.name]!.data.length))] : first.dims;
      const per = dims.reduce((a, b) => a * b, 1);
      const data = new (typedArrayFor(spec.dtype)!)(per * items.length); // zero-filled: the padding
      const target = data as unknown as { [i: number]: number | bigint };
      items.forEach((item, i) => {
        const t = item[spec.name]!;
        if (!padded && t.dims.join() !== first.dims.join()) {
          throw new Error(`items of one run must share a shape (input '${spec.name}')`);
        }
        for (let j = 0; j < t.data.length; j++) target[i * per + j] = convert(spec.dtype, t.data[j]!);
      });
      return { name: spec.name, dtype: spec.dtype, data, dims: [items.length, ...dims] };
    });
    const outputs = await this.pool.run(model.file, feeds, model.config.runTimeoutMs);
    return items.map((item, i) => {
      const result = splitItem(model, outputs, i, item);
      return nonFiniteOutput(model, result) ?? result;
    });
  }

  /**
   * Loads the latest version of every model in the repository, so the first item does not pay for it (Triton's
   * default). Resolves with the models that could not load, by name; each is tried again on its next request.
   */
  async preload(): Promise<{ model: string; error: string }[]> {
    const failed: { model: string; error: string }[] = [];
    for (const name of await this.repository.names()) {
      try {
        await this.ensureLoaded(await this.repository.resolve(name));
      } catch (err) {
        failed.push({ model: name, error: err instanceof Error ? err.message : String(err) });
      }
    }
    return failed;
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
        if (problems.length > 0)
          throw new ModelLoadError(model.file, `config.json disagrees with the model: ${problems.join('; ')}`);
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
        problems.push(
          `${kind} '${spec.name}' has shape [${m.shape.join(', ')}] (batch first), not [batch, ${spec.shape.join(', ')}]`,
        );
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

/**
 * A chunk's valid items as ready-made runs: items of one shape (text: one length bucket), of the model's largest
 * preferred batch size (else maxBatchSize) at most, in index order within a shape (text: shortest first, so a run
 * pads little).
 */
function formRuns<T extends { tensors: Record<string, ItemTensor> }>(
  model: ResolvedModel,
  items: T[],
  coalesce: boolean,
): T[][] {
  if (!coalesce) return items.map((item) => [item]); // dynamic batching off: every item runs alone
  const byShape = new Map<string, T[]>();
  const sorted = model.config.tokenizer
    ? [...items].sort((a, b) => tokenCount(model, a.tensors) - tokenCount(model, b.tensors))
    : items;
  for (const item of sorted) {
    const key = shapeKey(model, item.tensors);
    let group = byShape.get(key);
    if (!group) byShape.set(key, (group = []));
    group.push(item);
  }
  // The size the model runs best (its largest preferred batch size, as the batcher takes it), else maxBatchSize.
  const { maxBatchSize, dynamicBatching } = model.config;
  const size = Math.max(0, ...dynamicBatching.preferredBatchSizes.filter((p) => p <= maxBatchSize)) || maxBatchSize;
  const runs: T[][] = [];
  for (const group of byShape.values()) {
    for (let i = 0; i < group.length; i += size) runs.push(group.slice(i, i + size));
  }
  return runs;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function convert(dtype: TensorDtype, v: number | boolean): number | bigint {
  if (dtype === 'int64') return BigInt(v as number);
  if (dtype === 'bool') return v ? 1 : 0;
  return v as number;
}
