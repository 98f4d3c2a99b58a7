// The store ceiling: batchline's chunk work with nothing around it. The items are stored through the item store's
// own API (SQLite in a fresh data dir, as `npm start` uses it), then read a chunk at a time, inferred with the
// worker's own runtime (InferenceRuntime.inferMany: the same runs, on as many inference threads as the worker's
// configuration gives it; until 2026-12-03 it ran one thread, which made it no ceiling for text models) and each run's
// results and events written through the same store API (putResults), a few chunks at once. No Temporal, no HTTP,
// no heartbeats: what this machine can do for the work batchline does. Timed from the first read to the last write
// (after an untimed warm-up batch, when given).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BatchOptions, ItemInputs } from '../../src/contracts/batch.js';
import { loadConfig } from '../../src/config.js';
import { InferenceRuntime, runtimeOptions } from '../../src/runtime/inference.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import { SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { WORKER_SQLITE_OPTIONS } from '../../src/stores/open-stores.js';
import type { StoredResult } from '../../src/stores/item-store.js';
import { REPO_ROOT } from '../lib/report.js';

export interface StoreCeilingRun {
  system: 'store ceiling';
  items: number;
  wallMs: number;
  itemsPerSecond: number;
  failed: number;
}

/** Chunks in progress at once: enough to keep every inference thread busy while another chunk reads or writes. */
const CHUNKS_AT_ONCE = 4;

export async function runStoreCeiling(
  model: string,
  items: Record<string, unknown>[],
  itemsPerChunk: number,
  /** Items of an untimed batch run first through the same loop, store and runtime (compare.ts warms every system). */
  warmUp: Record<string, unknown>[] = [],
): Promise<StoreCeilingRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-ceiling-'));
  const store = new SqliteItemStore(path.join(dir, 'batchline.db'), WORKER_SQLITE_OPTIONS); // as a worker opens it
  const config = loadConfig({ ...process.env, MODEL_REPOSITORY: path.join(REPO_ROOT, 'models') });
  const runtime = new InferenceRuntime(new ModelRepository(config.MODEL_REPOSITORY), runtimeOptions(config));
  let failed = 0;
  const stage = (batchId: string, batch: Record<string, unknown>[]) =>
    store.createBatch(
      {
        id: batchId,
        model,
        total: batch.length,
        options: { itemsPerActivity: itemsPerChunk } as BatchOptions,
        createdAt: new Date().toISOString(),
        tenant: 'bench',
      },
      batch.map((inputs) => ({ inputs: inputs as ItemInputs })),
    );
  /** Reads, infers and writes a staged batch a chunk at a time, CHUNKS_AT_ONCE chunks at once. */
  const work = async (batchId: string, total: number): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CHUNKS_AT_ONCE }, async () => {
        for (let start = next; start < total; start = next) {
          next += itemsPerChunk;
          const chunk = await store.getItems(batchId, start, itemsPerChunk);
          const startedAt = new Date().toISOString();
          await runtime.inferMany(
            model,
            undefined,
            chunk.map((c) => c.inputs),
            async (positions, outcomes) => {
              const finishedAt = new Date().toISOString();
              const rows: Omit<StoredResult, 'id'>[] = [];
              positions.forEach((p, k) => {
                const outcome = outcomes[k]!;
                if (outcome instanceof Error) failed++;
                else {
                  const index = chunk[p]!.index;
                  rows.push({ index, status: 'succeeded', attempts: 1, result: outcome, startedAt, finishedAt });
                }
              });
              rows.sort((a, b) => a.index - b.index);
              await store.putResults(batchId, rows);
            },
          );
        }
      }),
    );
  };
  try {
    const batchId = 'ceiling';
    await stage(batchId, items);
    await runtime.preload();
    if (warmUp.length > 0) {
      await stage('ceiling-warm-up', warmUp);
      await work('ceiling-warm-up', warmUp.length);
      failed = 0;
    }
    const t0 = performance.now();
    await work(batchId, items.length);
    const wallMs = performance.now() - t0;
    const stored = await store.countResults(batchId);
    if (stored.succeeded + failed !== items.length) {
      throw new Error(`store ceiling: ${stored.succeeded} results stored and ${failed} failed of ${items.length}`);
    }
    return {
      system: 'store ceiling',
      items: items.length,
      wallMs,
      itemsPerSecond: items.length / (wallMs / 1000),
      failed,
    };
  } finally {
    await runtime.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
