import type { Worker } from 'node:worker_threads';
import { ModelLoadError } from '../errors.js';
import { startModuleThread } from '../module-thread.js';
import type {
  OnnxSignature,
  SessionSettings,
  ThreadRequest,
  ThreadResponse,
  WireTensor,
} from './inference-protocol.js';

export interface InferencePoolOptions extends Partial<SessionSettings> {
  /** Worker threads running sessions (default 1). Each holds its own copy of every model it has run. */
  threads?: number;
}

interface Pending {
  resolve: (res: ThreadResponse & { ok: true }) => void;
  reject: (err: Error) => void;
  file: string;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Pending>;
}

/**
 * A pool of worker threads that own onnxruntime sessions. run() sends a batch to the least busy thread and
 * resolves with its outputs; the event loop of the calling process stays free. A thread that dies fails only
 * the requests it held, and is replaced.
 */
export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly settings: SessionSettings;
  private nextId = 1;
  private closed = false;

  constructor(options: InferencePoolOptions = {}) {
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1)
      throw new RangeError(`threads must be a positive integer, got ${threads}`);
    this.settings = {
      intraOpNumThreads: options.intraOpNumThreads ?? 1,
      allowSpinning: options.allowSpinning ?? false,
    };
    for (let i = 0; i < threads; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  /** Loads (and keeps) a model on every thread; rejects with ModelLoadError naming the file if it cannot load. */
  async load(file: string): Promise<OnnxSignature> {
    const results = await Promise.all(this.slots.map((slot) => this.send(slot, { type: 'load', id: 0, file })));
    return results[0]!.signature!;
  }

  /** Runs one batch of feeds on the least busy thread. */
  async run(file: string, feeds: WireTensor[]): Promise<WireTensor[]> {
    let best = this.slots[0]!;
    for (const slot of this.slots) if (slot.inFlight.size < best.inFlight.size) best = slot;
    const res = await this.send(best, { type: 'run', id: 0, file, feeds });
    return res.outputs;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private send(slot: Slot, req: ThreadRequest): Promise<ThreadResponse & { ok: true }> {
    if (this.closed) return Promise.reject(new Error('inference pool is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.inFlight.set(id, { resolve, reject, file: req.file });
      slot.worker.postMessage({ ...req, id });
    });
  }

  private spawn(): Slot {
    const worker = startModuleThread(import.meta.url, 'inference-thread', this.settings);
    const slot: Slot = { worker, inFlight: new Map() };
    worker.on('message', (res: ThreadResponse) => {
      const pending = slot.inFlight.get(res.id);
      if (!pending) return;
      slot.inFlight.delete(res.id);
      if (res.ok) pending.resolve(res);
      else pending.reject(res.phase === 'load' ? new ModelLoadError(pending.file, res.error) : new Error(res.error));
    });
    const fail = (err: Error) => {
      for (const p of slot.inFlight.values()) p.reject(new Error(`inference thread failed: ${err.message}`));
      slot.inFlight.clear();
      const i = this.slots.indexOf(slot);
      if (i !== -1 && !this.closed) this.slots[i] = this.spawn();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`exited with code ${code}`));
    });
    return slot;
  }
}
