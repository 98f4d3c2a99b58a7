// Where a tabular item's time goes in the runtime: drives the batcher at concurrency 64 for a few seconds under
// --cpu-prof and prints the top self-time functions of the main thread.
//   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-batcher.ts [model]
import fs from 'node:fs';
import path from 'node:path';
import { InferenceRuntime } from '../src/runtime/inference.js';
import { ModelRepository } from '../src/runtime/model-repository.js';
import { parseBenchArgs } from './lib/args.js';
import { REPO_ROOT } from './lib/report.js';

const USAGE =
  'usage: node --import tsx --cpu-prof --cpu-prof-dir=DIR bench/profile-batcher.ts [model]   (default digits)';
const { positionals } = parseBenchArgs(USAGE, { allowPositionals: true });
if (positionals.length > 1) {
  console.error(`one model at most, got ${positionals.join(' ')}\n${USAGE}`);
  process.exit(2);
}
const model = positionals[0] ?? 'digits';
const rows = fs
  .readFileSync(path.join(REPO_ROOT, 'models', model, 'testdata', 'heldout.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => (JSON.parse(l) as { inputs: Record<string, unknown> }).inputs);
const runtime = new InferenceRuntime(new ModelRepository(path.join(REPO_ROOT, 'models')));
await runtime.infer(model, undefined, rows[0]!);
const end = performance.now() + 4000;
let done = 0;
let next = 0;
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (performance.now() < end) {
      await runtime.infer(model, undefined, rows[next++ % rows.length]!);
      done++;
    }
  }),
);
console.log(`${model}: ${Math.round(done / 4)} items/s`);
await runtime.close();
