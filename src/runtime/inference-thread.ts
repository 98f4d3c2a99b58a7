// Runs inside a worker thread of the InferencePool: owns onnxruntime sessions and runs them, so session.run()
// (synchronous on its calling thread in onnxruntime-node) never blocks the process's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import {
  RETIRE,
  typedArrayFor,
  type SessionSettings,
  type ThreadRequest,
  type ThreadResponse,
  type WireTensor,
} from './inference-protocol.js';

const settings = workerData as SessionSettings;
const sessions = new Map<string, Promise<ort.InferenceSession>>();

function session(file: string): Promise<ort.InferenceSession> {
  let pending = sessions.get(file);
  if (!pending) {
    pending = ort.InferenceSession.create(file, {
      intraOpNumThreads: settings.intraOpNumThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: settings.allowSpinning ? '1' : '0' } } },
    });
    pending = pending.then(async (s) => {
      await warmUp(s);
      return s;
    });
    sessions.set(file, pending);
    pending.catch(() => sessions.delete(file));
  }
  return pending;
}

/** One zero-filled run with batch 1 (dynamic dims as 1), so the first real batch does not pay for lazy set-up. */
async function warmUp(s: ort.InferenceSession): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const m of s.inputMetadata) {
    if (!m.isTensor) return; // an unusual signature: skip the warm-up, not the model
    const TypedArray = typedArrayFor(m.type);
    if (!TypedArray) return;
    const dims = m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[m.name] = new ort.Tensor(m.type as 'float32', new TypedArray(n) as Float32Array, dims);
  }
  await s.run(feeds).catch(() => undefined); // a model may reject zeros (e.g. token ids); real runs decide
}

async function handle(req: ThreadRequest): Promise<ThreadResponse> {
  let s: ort.InferenceSession;
  try {
    s = await session(req.file);
  } catch (err) {
    return { id: req.id, ok: false, phase: 'load', error: (err as Error).message ?? String(err) };
  }
  try {
    if (req.type === 'load') {
      const describe = (m: ort.InferenceSession.ValueMetadata) => ({
        name: m.name,
        type: m.isTensor ? m.type : 'non-tensor',
        shape: m.isTensor ? [...m.shape] : [],
      });
      const signature = { inputs: s.inputMetadata.map(describe), outputs: s.outputMetadata.map(describe) };
      return { id: req.id, ok: true, outputs: [], signature };
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of req.feeds) feeds[t.name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims);
    const out = await s.run(feeds);
    const outputs: WireTensor[] = Object.entries(out).map(([name, tensor]) => ({
      name,
      dtype: tensor.type,
      data: tensor.data as WireTensor['data'],
      dims: [...tensor.dims],
    }));
    return { id: req.id, ok: true, outputs };
  } catch (err) {
    return { id: req.id, ok: false, phase: 'run', error: (err as Error).message ?? String(err) };
  }
}

parentPort!.on('message', (req: ThreadRequest | typeof RETIRE) => {
  // Between runs (a run holds this thread until it returns), so no native call is cut short; queued runs are dropped.
  if (req.type === RETIRE.type) process.exit(0);
  void handle(req).then((res) => {
    // Hand the output buffers over without a copy when they are detachable; copy them when not.
    const transfer = res.ok ? [...new Set(res.outputs.map((o) => o.data.buffer as ArrayBuffer))] : [];
    try {
      parentPort!.postMessage(res, transfer);
    } catch {
      parentPort!.postMessage(res);
    }
  });
});
