import type { Worker } from 'node:worker_threads';
import { startModuleThread } from '../module-thread.js';
import type { AppendRequest, AppendResponse } from './item-append-thread.js';
import { DuplicateItemIdError } from './item-store.js';
import type { ItemRow } from './sqlite-item-store.js';

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The calling side of a SqliteItemStore's append thread (item-append-thread.ts). The thread starts on the first
 * append (or probe) and runs them one at a time, in the order they were sent. If it dies, the requests it held fail
 * and the next one starts a new thread. It never keeps the process alive on its own. A failure comes back as an
 * Error with the message and code of the thread's.
 */
export class BackgroundAppender {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 1;
  private closed = false;

  constructor(private readonly file: string) {}

  append(batchId: string, from: number, rows: ItemRow[]): Promise<void> {
    return this.send({ seq: this.nextSeq++, kind: 'append', batchId, from, rows });
  }

  /** Overwrites the readiness probe's row on the thread's connection (SqliteItemStore.probeNow). */
  probe(): Promise<void> {
    return this.send({ seq: this.nextSeq++, kind: 'probe' });
  }

  private send(req: AppendRequest): Promise<void> {
    if (this.closed) return Promise.reject(new Error('item store is closed'));
    const worker = (this.worker ??= this.start());
    return new Promise((resolve, reject) => {
      this.pending.set(req.seq, { resolve, reject });
      worker.ref(); // an append in flight keeps the process up until it is answered
      worker.postMessage(req);
    });
  }

  /** Fails what is in flight and stops the thread; resolves once it has exited (its connection closed). */
  async close(): Promise<void> {
    this.closed = true;
    this.fail(new Error('item store closed before the append finished'));
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private start(): Worker {
    const worker = startModuleThread(import.meta.url, 'item-append-thread', this.file);
    worker.unref();
    worker.on('message', (res: AppendResponse) => {
      const p = this.pending.get(res.seq);
      if (!p) return;
      this.pending.delete(res.seq);
      if (this.pending.size === 0) worker.unref();
      if (res.ok) p.resolve();
      else if ('duplicate' in res) p.reject(new DuplicateItemIdError(res.duplicate.itemId, res.duplicate.index));
      else p.reject(Object.assign(new Error(res.message), res.code ? { code: res.code } : {}));
    });
    const died = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.fail(new Error(`item append thread failed: ${err.message}`));
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`exited with code ${code}`)));
    return worker;
  }

  private fail(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
