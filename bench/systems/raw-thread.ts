// One thread of the raw loop on several threads (raw.ts, runRawThreads): its own onnxruntime session over the
// batches it was given, started on the caller's signal, answering when it started and ended (ms since the epoch).
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { rawSession } from '../lib/model-items.js';
import type { ResolvedModel } from '../../src/runtime/model-repository.js';

/** A tensor as it crosses to the thread: ort.Tensor is a class, so its parts. */
export interface PlainTensor {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: number[];
}

export interface RawThreadData {
  modelFile: string;
  batches: Record<string, PlainTensor>[];
}

const { modelFile, batches } = workerData as RawThreadData;
const port = parentPort!;
const session = await rawSession({ file: modelFile } as ResolvedModel, 1);
const feeds = batches.map((b) =>
  Object.fromEntries(Object.entries(b).map(([name, t]) => [name, new ort.Tensor(t.type, t.data, t.dims)])),
);
if (feeds[0]) await session.run(feeds[0]); // warm-up, before the clock
port.postMessage({ ready: true });
await new Promise((resolve) => port.once('message', resolve)); // go
const startedMs = performance.timeOrigin + performance.now();
for (const feed of feeds) await session.run(feed);
const endedMs = performance.timeOrigin + performance.now();
await session.release();
port.postMessage({ startedMs, endedMs });
