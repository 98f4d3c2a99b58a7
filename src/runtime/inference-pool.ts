import type { Worker } from 'node:worker_threads';
import { InferenceTimeoutError, ModelLoadError } from '../errors.js';
import { startModuleThread } from '../module-thread.js';
import {
  RETIRE,
  type OnnxSignature,
  type SessionSettings,
  type ThreadRequest,
  type ThreadResponse,
  type WireTensor,
} from './inference-protocol.js';
import { DEFAULT_RUN_TIMEOUT_MS } from './model-config.js';

export interface InferencePoolOptions extends Partial<SessionSettings> {
  /** Worker threads running sessions (default 1). Each holds its own copy of every model it has run. */
  threads?: number;
  /** Longest a run may take when run() is given no timeout (default DEFAULT_RUN_TIMEOUT_MS, 30 s). */
  runTimeoutMs?: number;
}

interface Pending {
  resolve: (res: ThreadResponse & { ok: true }) => void;
  reject: (err: Error) => void;
  file: string;
  /** A run's timeout, armed once its thread is ready. */
  timer?: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Pending>;
  /** Settles once a replacement thread has loaded the models its predecessor held (at once for the first ones). */
  ready: Promise<void>;
  /** Called once the thread has answered everything sent to it (close() waits for that). */
  onIdle?: () => void;
}

/** How long close() lets runs in flight finish: a thread terminated inside a native run aborts the process. */
const CLOSE_GRACE_MS = 5000;

/**
 * A pool of worker threads that own onnxruntime sessions. run() sends a batch to the least busy thread and
 * resolves with its outputs; the event loop of the calling process stays free. A thread that dies fails only
 * the requests it held, and is replaced by one that loads the same models. So is a thread whose run outlasts
 * its timeout: its runs fail with InferenceTimeoutError at once, and the thread is retired: it exits when the run
 * it is stuck in returns (nothing can cut a native onnxruntime call short; terminating the thread mid-run would
 * abort the process when that call returns). Until then it keeps its CPU and its memory, but no run waits on it.
 */
export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly settings: SessionSettings;
  private readonly runTimeoutMs: number;
  /** Models loaded on every thread, for replacement threads to load too. */
  private readonly files = new Set<string>();
  private nextId = 1;
  private closed = false;

  constructor(options: InferencePoolOptions = {}) {
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1)
      throw new RangeError(`threads must be a positive integer, got ${threads}`);
    this.runTimeoutMs = options.runTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
    if (!Number.isInteger(this.runTimeoutMs) || this.runTimeoutMs < 1)
      throw new RangeError(`runTimeoutMs must be a positive integer, got ${this.runTimeoutMs}`);
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
    this.files.add(file);
    return results[0]!.signature!;
  }

  /**
   * Runs one batch of feeds on the least busy thread. Past `timeoutMs` (default: the pool's runTimeoutMs), counted
   * from when its thread is ready for it, the run rejects with InferenceTimeoutError and its thread is replaced.
   * The feeds' buffers are moved to the thread, not copied: the caller's typed arrays are empty afterwards.
   */
  async run(file: string, feeds: WireTensor[], timeoutMs = this.runTimeoutMs): Promise<WireTensor[]> {
    let best = this.slots[0]!;
    for (const slot of this.slots) if (slot.inFlight.size < best.inFlight.size) best = slot;
    const transfer = [...new Set(feeds.map((f) => f.data.buffer as ArrayBuffer))];
    const res = await this.send(best, { type: 'run', id: 0, file, feeds }, timeoutMs, transfer);
    return res.outputs;
  }

  /**
   * Refuses new work, lets the runs in flight finish (CLOSE_GRACE_MS at most), then stops the threads. A thread
   * still inside a run then is not terminated, which would abort the process: it is retired (it exits when its run
   * returns) and no longer keeps the process alive.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(
        this.slots.map((slot) =>
          slot.inFlight.size === 0 ? undefined : new Promise<void>((resolve) => (slot.onIdle = resolve)),
        ),
      ),
      new Promise((resolve) => (grace = setTimeout(resolve, CLOSE_GRACE_MS))),
    ]);
    clearTimeout(grace);
    await Promise.all(
      this.slots.map(async (slot) => {
        const busy = slot.inFlight.size > 0;
        this.failAll(slot, new Error('inference pool is closed'));
        if (!busy) return slot.worker.terminate();
        slot.worker.postMessage(RETIRE);
        slot.worker.unref();
      }),
    );
  }

  private send(
    slot: Slot,
    req: ThreadRequest,
    timeoutMs?: number,
    transfer: ArrayBuffer[] = [],
  ): Promise<ThreadResponse & { ok: true }> {
    if (this.closed) return Promise.reject(new Error('inference pool is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve, reject, file: req.file };
      slot.inFlight.set(id, pending);
      // Posted at once: a replacement thread handles its loads first, as they were posted before.
      slot.worker.postMessage({ ...req, id }, transfer);
      if (timeoutMs === undefined) return;
      void slot.ready.then(() => {
        if (slot.inFlight.get(id) !== pending) return; // settled while the thread got ready
        pending.timer = setTimeout(() => this.timedOut(slot, req.file, timeoutMs), timeoutMs);
      });
    });
  }

  /** A run outlasted its timeout: the thread leaves the pool, a new one takes its place, its runs fail. */
  private timedOut(slot: Slot, file: string, timeoutMs: number): void {
    const i = this.slots.indexOf(slot);
    if (i === -1 || this.closed) return;
    this.slots[i] = this.spawn();
    this.failAll(slot, new InferenceTimeoutError(file, timeoutMs));
    slot.worker.postMessage(RETIRE);
  }

  private failAll(slot: Slot, err: Error): void {
    for (const p of slot.inFlight.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    slot.inFlight.clear();
  }

  private spawn(): Slot {
    const worker = startModuleThread(import.meta.url, 'inference-thread', this.settings);
    const slot: Slot = { worker, inFlight: new Map(), ready: Promise.resolve() };
    if (this.files.size > 0) {
      const loads = [...this.files].map((file) => this.send(slot, { type: 'load', id: 0, file }));
      slot.ready = Promise.allSettled(loads).then(() => undefined); // a model that no longer loads fails its runs
    }
    worker.on('message', (res: ThreadResponse) => {
      const pending = slot.inFlight.get(res.id);
      if (!pending) return;
      slot.inFlight.delete(res.id);
      clearTimeout(pending.timer);
      if (slot.inFlight.size === 0) slot.onIdle?.();
      if (res.ok) pending.resolve(res);
      else pending.reject(res.phase === 'load' ? new ModelLoadError(pending.file, res.error) : new Error(res.error));
    });
    const fail = (err: Error) => {
      this.failAll(slot, new Error(`inference thread failed: ${err.message}`));
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
