import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ItemResult } from '../../src/contracts/batch.js';
import { InferenceRuntime } from '../../src/runtime/inference.js';
import { validateItemInputs } from '../../src/runtime/input-validation.js';
import { ModelRepository, type ResolvedModel } from '../../src/runtime/model-repository.js';

// Parity of the bundled ONNX models with the scikit-learn pipelines they were exported from:
// models/<name>/testdata/heldout.jsonl holds every held-out row with sklearn's own prediction for it.

const MODELS = fileURLToPath(new URL('../../models', import.meta.url));
const TOLERANCE = 1e-4;

interface HeldoutRow {
  inputs: { input: number[] };
  expected: { label: number; labelName: string; probabilities: number[] };
  truth: number;
}

function heldout(name: string): HeldoutRow[] {
  return fs
    .readFileSync(path.join(MODELS, name, 'testdata', 'heldout.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as HeldoutRow);
}

function summary(name: string): { nHeldout: number; sklearnAccuracy: number } {
  return JSON.parse(fs.readFileSync(path.join(MODELS, name, 'testdata', 'summary.json'), 'utf8'));
}

/** Every disagreement with sklearn, one line each (empty when the model matches). */
function disagreements(rows: HeldoutRow[], results: ItemResult[], labels: string[]): string[] {
  const out: string[] = [];
  rows.forEach((row, i) => {
    const r = results[i]!;
    if (r.label !== row.expected.labelName) out.push(`row ${i}: label ${r.label}, sklearn ${row.expected.labelName}`);
    if (labels.indexOf(r.label!) !== row.expected.label)
      out.push(`row ${i}: label index differs from sklearn's ${row.expected.label}`);
    const probs = r.probabilities ?? [];
    if (probs.length !== row.expected.probabilities.length) {
      out.push(`row ${i}: ${probs.length} probabilities, sklearn ${row.expected.probabilities.length}`);
      return;
    }
    row.expected.probabilities.forEach((p, k) => {
      const diff = Math.abs(probs[k]! - p);
      if (!(diff <= TOLERANCE)) out.push(`row ${i} class ${k}: p=${probs[k]}, sklearn ${p} (|diff| ${diff})`);
    });
  });
  return out;
}

for (const name of ['digits', 'breast-cancer'] as const) {
  describe(`${name}: parity with scikit-learn on the held-out set`, () => {
    const rows = heldout(name);
    const expectedSummary = summary(name);
    let runtime: InferenceRuntime;
    let resolved: ResolvedModel;

    before(async () => {
      const repository = new ModelRepository(MODELS);
      runtime = new InferenceRuntime(repository);
      resolved = await repository.resolve(name);
    });
    after(() => runtime.close());

    test('the held-out file holds every held-out row', () => {
      assert.equal(rows.length, expectedSummary.nHeldout);
    });

    test('one item at a time through infer(): labels equal sklearn and probabilities agree within 1e-4', async (t) => {
      const results: ItemResult[] = [];
      for (const row of rows) results.push(await runtime.infer(name, undefined, row.inputs));

      const wrong = disagreements(rows, results, resolved.config.labels!);
      assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} disagreements with sklearn`);

      const labels = resolved.config.labels!;
      const correct = rows.filter((row, i) => labels.indexOf(results[i]!.label!) === row.truth).length;
      const accuracy = correct / rows.length;
      t.diagnostic(
        `${name}: accuracy vs truth ${accuracy.toFixed(4)} (${correct}/${rows.length}); sklearn ${expectedSummary.sklearnAccuracy.toFixed(4)}`,
      );
      assert.equal(accuracy, expectedSummary.sklearnAccuracy);
    });

    test('all rows as one batch through run(): labels equal sklearn and probabilities agree within 1e-4', async (t) => {
      const tensors = rows.map((row) => validateItemInputs(resolved.config, row.inputs));

      const results = await runtime.run(resolved, tensors);

      assert.equal(results.length, rows.length);
      const wrong = disagreements(rows, results, resolved.config.labels!);
      assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} disagreements with sklearn`);
      for (const r of results) {
        assert.equal(r.model, name);
        assert.equal(r.version, 1);
      }
      const labels = resolved.config.labels!;
      const correct = rows.filter((row, i) => labels.indexOf(results[i]!.label!) === row.truth).length;
      t.diagnostic(`${name}: batch of ${rows.length}, accuracy vs truth ${(correct / rows.length).toFixed(4)}`);
      assert.equal(correct / rows.length, expectedSummary.sklearnAccuracy);
    });
  });
}
