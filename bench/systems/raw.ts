// The physical limit: one onnxruntime-node session in a tight loop over the same items, at the best batch size and
// intra-op thread count tried (two sessions on one thread do not overlap: measured, no gain). Tensors (and text
// tokenization) are built before the clock starts, so only inference is timed; sentences are sorted by length
// first, so batches carry the least padding. No queue, no durability, nothing stored.
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { startModuleThread } from '../../src/module-thread.js';
import type { ResolvedModel } from '../../src/runtime/model-repository.js';
import { TextTokenizers } from '../../src/runtime/text-tokenizer.js';
import { rawFeeds, rawSession } from '../lib/model-items.js';
import type { PlainTensor, RawThreadData } from './raw-thread.js';

export interface RawRun {
  system: 'raw';
  items: number;
  wallMs: number;
  itemsPerSecond: number;
  /** The best setting found: what the other systems are compared against. */
  batchSize: number;
  intraOpThreads: number;
  /** Every setting tried, items/s. */
  tried: { batchSize: number; intraOpThreads: number; itemsPerSecond: number }[];
}

/** Infers every item in batches, for each batch size and intra-op thread count; the best is the limit. */
export async function runRaw(
  model: ResolvedModel,
  items: Record<string, unknown>[],
  intraOps: number[] = [1, 2],
): Promise<RawRun> {
  const { sizes, ordered } = await batchPlan(model, items);
  const tried: RawRun['tried'] = [];
  let best: RawRun | undefined;
  for (const intra of intraOps) {
    const session = await rawSession(model, intra);
    try {
      await session.run(await rawFeeds(model, items.slice(0, 1))); // warm-up
      for (const bs of sizes) {
        const feeds: Awaited<ReturnType<typeof rawFeeds>>[] = [];
        for (let i = 0; i < ordered.length; i += bs) feeds.push(await rawFeeds(model, ordered.slice(i, i + bs)));
        const t0 = performance.now();
        for (const feed of feeds) await session.run(feed);
        const wallMs = performance.now() - t0;
        const itemsPerSecond = items.length / (wallMs / 1000);
        tried.push({ batchSize: bs, intraOpThreads: intra, itemsPerSecond });
        if (!best || itemsPerSecond > best.itemsPerSecond) {
          best = {
            system: 'raw',
            items: items.length,
            wallMs,
            itemsPerSecond,
            batchSize: bs,
            intraOpThreads: intra,
            tried,
          };
        }
      }
    } finally {
      await session.release();
    }
  }
  return { ...best!, tried };
}

export interface RawThreadsRun {
  system: 'raw threads';
  items: number;
  wallMs: number;
  itemsPerSecond: number;
  threads: number;
  batchSize: number;
  tried: { batchSize: number; itemsPerSecond: number }[];
}

/**
 * The raw loop with as many sessions as batchline's inference pool has threads: one session (intra-op 1) per worker
 * thread, the batches dealt out in turn, all threads started together; timed from the first start to the last end.
 * Each batch size of runRaw is tried; the best is the limit.
 */
export async function runRawThreads(
  model: ResolvedModel,
  items: Record<string, unknown>[],
  threads: number,
): Promise<RawThreadsRun> {
  const { sizes, ordered } = await batchPlan(model, items);
  const tried: RawThreadsRun['tried'] = [];
  let best: RawThreadsRun | undefined;
  for (const bs of sizes) {
    const shares: Record<string, PlainTensor>[][] = Array.from({ length: threads }, () => []);
    for (let i = 0, k = 0; i < ordered.length; i += bs, k++) {
      const feeds = await rawFeeds(model, ordered.slice(i, i + bs));
      shares[k % threads]!.push(
        Object.fromEntries(
          Object.entries(feeds).map(([name, t]) => [
            name,
            { type: t.type as PlainTensor['type'], data: t.data as PlainTensor['data'], dims: [...t.dims] },
          ]),
        ),
      );
    }
    const workers: Worker[] = shares.map((batches) =>
      startModuleThread(import.meta.url, 'raw-thread', { modelFile: model.file, batches } satisfies RawThreadData),
    );
    try {
      await Promise.all(workers.map((w) => once(w, 'message')));
      const done = workers.map((w) => once(w, 'message') as Promise<[{ startedMs: number; endedMs: number }]>);
      for (const w of workers) w.postMessage('go');
      const times = (await Promise.all(done)).map(([t]) => t);
      const wallMs = Math.max(...times.map((t) => t.endedMs)) - Math.min(...times.map((t) => t.startedMs));
      const itemsPerSecond = items.length / (wallMs / 1000);
      tried.push({ batchSize: bs, itemsPerSecond });
      if (!best || itemsPerSecond > best.itemsPerSecond) {
        best = { system: 'raw threads', items: items.length, wallMs, itemsPerSecond, threads, batchSize: bs, tried };
      }
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }
  return { ...best!, tried };
}

/**
 * The batch sizes a raw loop tries (32, the model's maxBatchSize and its preferred sizes: the sizes batchline's
 * batcher aims for) and the items in the order it runs them: text sorted by token count first, so each batch pads
 * as little as possible (the best case for a loop).
 */
async function batchPlan(
  model: ResolvedModel,
  items: Record<string, unknown>[],
): Promise<{ sizes: number[]; ordered: Record<string, unknown>[] }> {
  const { maxBatchSize, dynamicBatching } = model.config;
  const sizes = [...new Set([32, ...dynamicBatching.preferredBatchSizes, maxBatchSize])].sort((a, b) => a - b);
  return { sizes, ordered: model.config.tokenizer ? await byTokenCount(model, items) : items };
}

async function byTokenCount(
  model: ResolvedModel,
  items: Record<string, unknown>[],
): Promise<Record<string, unknown>[]> {
  const tokenizers = new TextTokenizers();
  const counts = await Promise.all(
    items.map(async (item) => (await tokenizers.encode(model, item.text as string)).input_ids!.data.length),
  );
  return items
    .map((item, i) => ({ item, n: counts[i]! }))
    .sort((a, b) => a.n - b.n)
    .map((x) => x.item);
}
