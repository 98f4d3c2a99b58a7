// bench/runtime: the physical limit (a raw onnxruntime session loop) against batchline's runtime (worker-thread
// pool + dynamic batcher) under the same concurrency, per bundled model, and the event-loop lag of the process
// that drives it. Writes bench/results/runtime-<date>.json and the runtime section of BENCHMARKS.md.
//
//   node --import tsx bench/runtime.ts [--quick]
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import { InferenceRuntime, type InferenceOptions } from '../src/runtime/inference.js';
import { ModelRepository, type ResolvedModel } from '../src/runtime/model-repository.js';
import { parseBenchArgs } from './lib/args.js';
import { itemsFor, rawFeeds, rawSession } from './lib/model-items.js';
import { fmt, machine, ratio, REPO_ROOT, stat, updateBenchmarksMd, writeResults, type Stat } from './lib/report.js';

const { values: args } = parseBenchArgs(
  'usage: node --import tsx bench/runtime.ts [--quick]   (--quick: shorter, fewer runs)',
  {
    options: { quick: { type: 'boolean', default: false } },
  },
);
const quick = args.quick;
const SECONDS = quick ? 0.7 : 2;
const RUNS = quick ? 3 : 5;
const BATCH_SIZES = [1, 8, 32, 128];
const INTRA = [1, 2];
const CONCURRENCY = [1, 64];
const POOLS: { threads: number; intra: number; spin: boolean }[] = [
  { threads: 1, intra: 1, spin: false },
  { threads: 1, intra: 2, spin: false },
  { threads: 1, intra: 2, spin: true },
  { threads: 2, intra: 1, spin: false },
];

const repository = new ModelRepository(path.join(REPO_ROOT, 'models'));

/**
 * The raw loop's feeds: batches of `bs` consecutive real items, enough batches to cover every item once (so a
 * batch-1 loop does not measure only the first item), one tensor per input (text: tokenized, padded per batch).
 */
async function rawFeedList(
  model: ResolvedModel,
  items: Record<string, unknown>[],
  bs: number,
): Promise<Record<string, ort.Tensor>[]> {
  const batches = Math.max(1, Math.ceil(Math.min(items.length, 1024) / bs));
  return Promise.all(
    Array.from({ length: batches }, (_, b) =>
      rawFeeds(
        model,
        Array.from({ length: bs }, (_, i) => items[(b * bs + i) % items.length]!),
      ),
    ),
  );
}

/** Runs `fn` repeatedly for SECONDS and returns items/s. */
async function throughput(fn: () => Promise<number>): Promise<number> {
  const end = performance.now() + SECONDS * 1000;
  let items = 0;
  const t0 = performance.now();
  while (performance.now() < end) items += await fn();
  return items / ((performance.now() - t0) / 1000);
}

interface RawRow {
  intraOpThreads: number;
  batchSize: number;
  itemsPerSec: Stat;
  eventLoopP99Ms: number;
}

/** The raw loop: one session on this thread, a prebuilt tensor of `batchSize` real rows, run back to back. */
async function rawLoop(model: ResolvedModel, items: Record<string, unknown>[]): Promise<RawRow[]> {
  const rows: RawRow[] = [];
  for (const intra of INTRA) {
    const session = await rawSession(model, intra);
    for (const bs of BATCH_SIZES) {
      const feedList = await rawFeedList(model, items, bs);
      await session.run(feedList[0]!);
      let k = 0;
      const lag = monitorEventLoopDelay({ resolution: 5 });
      lag.enable();
      const runs: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        runs.push(await throughput(async () => (await session.run(feedList[k++ % feedList.length]!), bs)));
      }
      lag.disable();
      rows.push({
        intraOpThreads: intra,
        batchSize: bs,
        itemsPerSec: stat(runs),
        eventLoopP99Ms: lag.percentile(99) / 1e6,
      });
      console.error(`raw ${model.name} intra=${intra} bs=${bs}: ${fmt(stat(runs))} items/s`);
    }
    await session.release();
  }
  return rows;
}

interface BatcherRow {
  threads: number;
  intraOpThreads: number;
  spinning: boolean;
  concurrency: number;
  itemsPerSec: Stat;
  meanBatchSize: number;
  eventLoopP50Ms: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
}

/** batchline's runtime: `concurrency` callers each awaiting infer() in a loop, as item activities do. */
async function batcherLoop(model: ResolvedModel, items: Record<string, unknown>[]): Promise<BatcherRow[]> {
  const rows: BatcherRow[] = [];
  for (const pool of POOLS) {
    let batches = 0;
    let batchedItems = 0;
    const options: InferenceOptions = {
      threads: pool.threads,
      intraOpNumThreads: pool.intra,
      allowSpinning: pool.spin,
      onBatch: (_m, size) => {
        batches++;
        batchedItems += size;
      },
    };
    const runtime = new InferenceRuntime(repository, options);
    await runtime.infer(model.name, model.version, items[0]!);
    for (const concurrency of CONCURRENCY) {
      batches = 0;
      batchedItems = 0;
      const lag = monitorEventLoopDelay({ resolution: 5 });
      lag.enable();
      const runs: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        let next = 0;
        const end = performance.now() + SECONDS * 1000;
        const t0 = performance.now();
        let done = 0;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (performance.now() < end) {
              await runtime.infer(model.name, model.version, items[next++ % items.length]!);
              done++;
            }
          }),
        );
        runs.push(done / ((performance.now() - t0) / 1000));
      }
      lag.disable();
      const row: BatcherRow = {
        threads: pool.threads,
        intraOpThreads: pool.intra,
        spinning: pool.spin,
        concurrency,
        itemsPerSec: stat(runs),
        meanBatchSize: batchedItems / Math.max(batches, 1),
        eventLoopP50Ms: lag.percentile(50) / 1e6,
        eventLoopP99Ms: lag.percentile(99) / 1e6,
        eventLoopMaxMs: lag.max / 1e6,
      };
      rows.push(row);
      console.error(
        `batcher ${model.name} threads=${pool.threads} intra=${pool.intra} spin=${pool.spin} c=${concurrency}: ${fmt(row.itemsPerSec)} items/s, ` +
          `mean batch ${row.meanBatchSize.toFixed(1)}, loop p99 ${row.eventLoopP99Ms.toFixed(1)} ms`,
      );
    }
    await runtime.close();
  }
  return rows;
}

async function main(): Promise<void> {
  const models = ['digits', 'breast-cancer'];
  if (fs.existsSync(path.join(REPO_ROOT, 'models', 'all-minilm-l6-v2', '1', 'model.onnx')))
    models.push('all-minilm-l6-v2');
  else
    console.error(
      'all-minilm-l6-v2 not fetched (bash scripts/fetch-embedding-model.sh): measuring the bundled models only',
    );
  const results: Record<string, { raw: RawRow[]; batcher: BatcherRow[] }> = {};
  for (const name of models) {
    const model = await repository.resolve(name);
    const items = itemsFor(name);
    results[name] = { raw: await rawLoop(model, items), batcher: await batcherLoop(model, items) };
  }
  const file = writeResults('runtime', { quick, seconds: SECONDS, runs: RUNS, machine: machine(), results });

  const lines: string[] = [];
  lines.push('## Runtime: raw onnxruntime loop vs. the dynamic batcher');
  lines.push('');
  lines.push(
    `\`node --import tsx bench/runtime.ts${quick ? ' --quick' : ''}\`, ${new Date().toISOString().slice(0, 10)}, ` +
      `${RUNS} runs of ${SECONDS} s each; median (min–max) items/s. Raw data: [${path.basename(file)}](${file}).`,
  );
  for (const name of models) {
    const { raw, batcher } = results[name]!;
    const best = raw.reduce((a, b) => (b.itemsPerSec.median > a.itemsPerSec.median ? b : a));
    lines.push(
      '',
      `### ${name}`,
      '',
      '| raw loop | batch 1 | batch 8 | batch 32 | batch 128 |',
      '|---|---|---|---|---|',
    );
    for (const intra of INTRA) {
      const cells = BATCH_SIZES.map((bs) =>
        fmt(raw.find((r) => r.intraOpThreads === intra && r.batchSize === bs)!.itemsPerSec),
      );
      lines.push(`| intra-op threads ${intra} | ${cells.join(' | ')} |`);
    }
    lines.push(
      '',
      `Physical limit: ${fmt(best.itemsPerSec)} items/s (batch ${best.batchSize}, intra-op ${best.intraOpThreads}).`,
      '',
      '| batcher (pool threads × intra-op, spinning) | concurrency | items/s | ratio to the limit | mean batch | event loop p50 / p99 / max ms |',
      '|---|---|---|---|---|---|',
    );
    for (const b of batcher) {
      lines.push(
        `| ${b.threads} × ${b.intraOpThreads}${b.spinning ? ', spin' : ''} | ${b.concurrency} | ${fmt(b.itemsPerSec)} | ${ratio(b.itemsPerSec.median / best.itemsPerSec.median)}x | ` +
          `${b.meanBatchSize.toFixed(1)} | ${b.eventLoopP50Ms.toFixed(1)} / ${b.eventLoopP99Ms.toFixed(1)} / ${b.eventLoopMaxMs.toFixed(1)} |`,
      );
    }
  }
  updateBenchmarksMd('runtime', lines.join('\n'));
  console.error(`wrote ${file} and BENCHMARKS.md`);
}

await main();
