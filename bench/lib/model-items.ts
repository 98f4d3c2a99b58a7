// The items every benchmark feeds a model (the committed held-out rows or reference sentences, cycled to any
// count), and the raw onnxruntime feeds built from them.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type { ResolvedModel } from '../../src/runtime/model-repository.js';
import { TextTokenizers } from '../../src/runtime/text-tokenizer.js';
import { REPO_ROOT } from './report.js';

const tokenizers = new TextTokenizers();

/**
 * Items of the untimed batch a benchmark runs first on a system's fresh processes, in the same mode, so the timed
 * batch of `items` meets a warm stack, as a service's batches do after its first: compiled code, grown heaps and
 * caches, workflow code loaded, shards started. As many as the timed batch: after a smaller one (a tenth, at most
 * 5,000 items, until 2026-12-05) the first large batch on a stack still ran measurably slower than the next one
 * (BENCHMARKS.md, "Reading the digits 100k run alone (2026-12-05, twenty-second session)").
 */
export const warmUpItems = (items: number) => items;

/** Item inputs: the committed held-out rows of a tabular model, or the reference sentences of a text model. */
export function itemsFor(model: string): Record<string, unknown>[] {
  const dir = path.join(REPO_ROOT, 'models', model, 'testdata');
  if (fs.existsSync(path.join(dir, 'reference.json'))) {
    const { sentences } = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as {
      sentences: string[];
    };
    return sentences.map((text) => ({ text }));
  }
  return fs
    .readFileSync(path.join(dir, 'heldout.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { inputs: Record<string, unknown> }).inputs);
}

/** `n` items of a model: its real rows or sentences, cycled. */
export function itemsOf(model: string, n: number): Record<string, unknown>[] {
  const base = itemsFor(model);
  return Array.from({ length: n }, (_, i) => base[i % base.length]!);
}

/** One batch's feeds: a tensor per input (text: tokenized, padded to the batch's longest item). */
export async function rawFeeds(
  model: ResolvedModel,
  picked: Record<string, unknown>[],
): Promise<Record<string, ort.Tensor>> {
  const bs = picked.length;
  if (!model.config.tokenizer) {
    const spec = model.config.inputs[0]!;
    const per = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(bs * per);
    picked.forEach((item, i) => data.set((item[spec.name] as number[]).flat(), i * per));
    return { [spec.name]: new ort.Tensor('float32', data, [bs, ...spec.shape]) };
  }
  const encoded = await Promise.all(picked.map((item) => tokenizers.encode(model, item.text as string)));
  const len = Math.max(...encoded.map((e) => e.input_ids!.data.length));
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of model.config.inputs) {
    const data = new BigInt64Array(bs * len);
    encoded.forEach((e, i) => (e[spec.name]!.data as number[]).forEach((v, j) => (data[i * len + j] = BigInt(v))));
    feeds[spec.name] = new ort.Tensor('int64', data, [bs, len]);
  }
  return feeds;
}

/** The raw baseline's session: one onnxruntime session on the calling thread, sequential, fully optimised. */
export function rawSession(model: ResolvedModel, intraOpNumThreads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model.file, {
    intraOpNumThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}
