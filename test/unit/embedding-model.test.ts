// The compute-bound sentence-embedding model (all-MiniLM-L6-v2): TypeScript tokenization (@huggingface/tokenizers)
// plus ONNX plus mean pooling must reproduce the reference implementation (sentence-transformers) on committed
// sentences. `npm test`'s set-up fetches the model (scripts/setup.mjs); a missing model fails these tests.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { InvalidInputError } from '../../src/errors.js';
import { InferenceRuntime } from '../../src/runtime/inference.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import { TextTokenizers } from '../../src/runtime/text-tokenizer.js';
import { ROOT } from '../helpers/temporal.js';

const MODEL = 'all-minilm-l6-v2';
const dir = path.join(ROOT, 'models', MODEL);
const reference = JSON.parse(fs.readFileSync(path.join(dir, 'testdata', 'reference.json'), 'utf8')) as {
  sentences: string[];
  tokens: number[][];
  embeddings: number[][];
  max_seq_length: number;
};

function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  a.forEach((x, i) => {
    dot += x * b[i]!;
    na += x * x;
    nb += b[i]! * b[i]!;
  });
  return dot / Math.sqrt(na * nb);
}

describe(`${MODEL} against sentence-transformers`, () => {
  const repository = new ModelRepository(path.join(ROOT, 'models'));
  const sizes: number[] = [];
  const runtime = new InferenceRuntime(repository, { onBatch: (_m, n) => sizes.push(n) });
  after(() => runtime.close());

  test('the TypeScript tokenizer gives the reference token ids for every sentence', async () => {
    const model = await repository.resolve(MODEL);
    const tokenizers = new TextTokenizers();
    for (const [i, sentence] of reference.sentences.entries()) {
      const t = await tokenizers.encode(model, sentence);
      assert.deepEqual(t.input_ids!.data, reference.tokens[i], `sentence ${i}: ${sentence}`);
      assert.deepEqual(t.attention_mask!.data, new Array(reference.tokens[i]!.length).fill(1));
    }
  });

  test('each sentence alone: cosine with the reference embedding >= 0.999', async (t) => {
    for (const [i, sentence] of reference.sentences.entries()) {
      const res = await runtime.infer(MODEL, undefined, { text: sentence });
      assert.equal(res.embedding!.length, 384);
      const cos = cosine(res.embedding!, reference.embeddings[i]!);
      t.diagnostic(`sentence ${i}: cosine ${cos.toFixed(9)}`);
      assert.ok(cos >= 0.999, `sentence ${i}: cosine ${cos}`);
      const norm = Math.hypot(...res.embedding!);
      assert.ok(Math.abs(norm - 1) < 1e-5, `unit length, got ${norm}`);
      assert.deepEqual(res.outputs, {}, 'the raw hidden states are not returned');
    }
  });

  test('all sentences at once: batched and padded, every cosine still >= 0.999', async () => {
    sizes.length = 0;
    const results = await Promise.all(reference.sentences.map((s) => runtime.infer(MODEL, undefined, { text: s })));
    results.forEach((res, i) => {
      const cos = cosine(res.embedding!, reference.embeddings[i]!);
      assert.ok(cos >= 0.999, `sentence ${i} in a batch: cosine ${cos}`);
    });
    assert.ok(Math.max(...sizes) > 1, `sentences shared a run: ${JSON.stringify(sizes)}`);
  });

  test(`a long text is truncated to ${reference.max_seq_length} tokens, keeping the closing [SEP]`, async () => {
    const model = await repository.resolve(MODEL);
    const long = Array.from({ length: 600 }, (_, i) => `word${i % 50}`).join(' ');
    const t = await new TextTokenizers().encode(model, long);
    const ids = t.input_ids!.data as number[];
    assert.equal(ids.length, reference.max_seq_length);
    assert.equal(ids[0], 101);
    assert.equal(ids[ids.length - 1], 102);
    const res = await runtime.infer(MODEL, undefined, { text: long });
    assert.equal(res.embedding!.length, 384);
  });

  test('a text model refuses tensors, empty text and unknown fields with InvalidInput', async () => {
    for (const inputs of [{ input_ids: [101, 102] }, { text: '   ' }, { text: 7 }, { text: 'ok', extra: 1 }, {}]) {
      await assert.rejects(runtime.infer(MODEL, undefined, inputs), InvalidInputError, JSON.stringify(inputs));
    }
  });
});

test('without the fetched model, resolving it says how to get it', async () => {
  // A repository holding the model's config and version folder but not its model.onnx: a clone before set-up.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-models-'));
  try {
    fs.mkdirSync(path.join(root, MODEL, '1'), { recursive: true });
    fs.copyFileSync(path.join(dir, 'config.json'), path.join(root, MODEL, 'config.json'));
    await assert.rejects(new ModelRepository(root).resolve(MODEL), /no <version>\/model\.onnx yet/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
