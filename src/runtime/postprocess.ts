import type { ItemResult } from '../contracts/batch.js';
import { NonFiniteOutputError } from '../errors.js';
import { tokenCount } from './dynamic-batcher.js';
import type { WireTensor } from './inference-protocol.js';
import type { ItemTensor } from './input-validation.js';
import type { ResolvedModel } from './model-repository.js';

/**
 * Cuts item `i` out of a batch's outputs and applies the model's post-processing: a classifier's result carries
 * `label` and `probabilities` (softmax first for logits); an embedding model's carries `embedding` (pooled over
 * the item's own tokens, so batch padding never leaks in); a text model's carries its length in `tokens`. The raw
 * outputs that post-processing consumed are left out of `outputs`.
 */
export function splitItem(
  model: ResolvedModel,
  out: WireTensor[],
  i: number,
  item: Record<string, ItemTensor>,
): ItemResult {
  const post = model.config.postprocess;
  const outputs: ItemResult['outputs'] = {};
  const result: ItemResult = { model: model.name, version: model.version, outputs };
  if (model.config.tokenizer) result.tokens = tokenCount(model, item);
  for (const tensor of out) {
    if (post?.type === 'embedding' && tensor.name === post.output) {
      result.embedding = pool(tensor, i, item, post.pooling, post.normalize);
      continue;
    }
    const slice = itemSlice(tensor, i);
    outputs[tensor.name] = tensor.dims.length > 1 ? slice : slice[0]!;
  }
  if (post?.type === 'classification') {
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

/**
 * The error for an item whose result holds NaN or an infinity (a model can overflow inside on finite inputs), or
 * undefined when every number in it is finite. Checked on the result as the client would get it: post-processing
 * itself turns finite scores into finite probabilities and vectors.
 */
export function nonFiniteOutput(model: ResolvedModel, result: ItemResult): NonFiniteOutputError | undefined {
  const fields: [string, unknown][] = [
    ['probabilities', result.probabilities],
    ['embedding', result.embedding],
    ...Object.entries(result.outputs).map(([name, v]): [string, unknown] => [`outputs.${name}`, v]),
  ];
  for (const [field, value] of fields) {
    if (typeof value === 'number' && !Number.isFinite(value))
      return new NonFiniteOutputError(model.name, model.version, field, value);
    if (!Array.isArray(value)) continue;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === 'number' && !Number.isFinite(v))
        return new NonFiniteOutputError(model.name, model.version, `${field}[${i}]`, v);
    }
  }
  return undefined;
}

/** Item i's values of a batch output, as plain numbers (a plain loop: Array.from with a map function was slower). */
function itemSlice(tensor: WireTensor, i: number): number[] {
  let per = 1;
  for (let d = 1; d < tensor.dims.length; d++) per *= tensor.dims[d]!;
  const data = tensor.data as ArrayLike<number | bigint>;
  const out = new Array<number>(per);
  for (let k = 0, at = i * per; k < per; k++, at++) out[k] = Number(data[at]!);
  return out;
}

/** Pools a [batch, tokens, dim] output over the item's real tokens (its own length, before padding). */
function pool(
  tensor: WireTensor,
  i: number,
  item: Record<string, ItemTensor>,
  how: 'mean' | 'cls',
  normalize: boolean,
): number[] {
  const [, tokens, dim] = tensor.dims as [number, number, number];
  const data = tensor.data as Float32Array;
  const mask = item.attention_mask?.data as number[] | undefined;
  const length = item.input_ids?.data.length ?? tokens;
  const v = new Float64Array(dim);
  let kept = 0;
  for (let t = 0; t < (how === 'cls' ? 1 : length); t++) {
    if (mask && !mask[t]) continue;
    const base = (i * tokens + t) * dim;
    for (let d = 0; d < dim; d++) v[d]! += data[base + d]!;
    kept++;
  }
  for (let d = 0; d < dim; d++) v[d]! /= Math.max(kept, 1);
  if (normalize) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += v[d]! * v[d]!;
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < dim; d++) v[d]! /= norm;
  }
  return Array.from(v);
}

function softmax(xs: number[]): number[] {
  const max = Math.max(...xs);
  const exps = xs.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
