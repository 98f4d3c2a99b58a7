import type { Worker } from 'node:worker_threads';
import { startModuleThread } from '../module-thread.js';
import { DuplicateItemIdError } from './item-store.js';
import { toStoreUnavailable } from './store-unavailable.js';
import type { ItemRow } from './item-store.js';
import type { OutcomeRow } from './sqlite-item-store.js';
import type { PackedRows, StoreThreadData, StoreThreadRequest, StoreThreadResponse } from './store-thread-main.js';

interface Pending {
  resolve: (written: boolean[] | undefined) => void;
  reject: (err: Error) => void;
}

/** One outcome given to writeOutcome, waiting for the transaction that writes it. */
interface GatheredOutcome {
  row: OutcomeRow;
  resolve: (written: boolean) => void;
  reject: (err: Error) => void;
}

/** A request as the calling side sends it, before it is numbered (each kind of StoreThreadRequest without `seq`). */
type Unnumbered<R> = R extends unknown ? Omit<R, 'seq'> : never;
type Request = Unnumbered<StoreThreadRequest>;

/**
 * The calling side of a SqliteItemStore's own thread (store-thread-main.ts), which writes on a connection of its own
 * to the store's file: appends of staged uploads (the thread that parses a submission goes on to its next lines),
 * the readiness probe's row (a probe waiting on the file never blocks the caller) and, for a worker, its chunks'
 * outcomes. The thread starts on the first request (or prestart()) and runs them one at a time, in the order they
 * were sent. If it dies, the requests it held fail and the next one starts a new thread. It never keeps the process
 * alive on its own. A failure comes back as the thread's message and code; a storage fault as StoreUnavailableError.
 */
export class StoreThread {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 1;
  private closed = false;
  /** Outcomes given to writeOutcome in this turn of the event loop, by batch; sent once the turn ends. */
  private gathered = new Map<string, GatheredOutcome[]>();
  private gathering = false;

  /** `busyTimeoutMs`: the thread's connection waits for another writer's lock as the caller's does. */
  constructor(
    private readonly file: string,
    private readonly busyTimeoutMs?: number,
  ) {}

  /** Starts the thread now rather than on the first request (which would wait for its start-up). */
  prestart(): void {
    if (!this.closed) this.worker ??= this.start();
  }

  async append(batchId: string, from: number, rows: ItemRow[], perBlock: number): Promise<void> {
    await this.send({ kind: 'append', batchId, from, rows: packRows(rows), perBlock });
  }

  /** Writes outcomes (SqliteItemStore.writeOutcomes); answers which were written. */
  async writeOutcomes(batchId: string, rows: OutcomeRow[]): Promise<boolean[]> {
    return (await this.send({ kind: 'outcomes', batchId, rows }))!;
  }

  /**
   * Writes one outcome (an item of its own activity). The outcomes given in one turn of the event loop (the items of
   * one inference run end together) are written in one transaction per batch, as a chunk's run is: a transaction per
   * outcome cost more than writing the outcome. Answers whether it was written.
   */
  writeOutcome(batchId: string, row: OutcomeRow): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('item store is closed'));
    return new Promise((resolve, reject) => {
      let list = this.gathered.get(batchId);
      if (!list) this.gathered.set(batchId, (list = []));
      list.push({ row, resolve, reject });
      if (!this.gathering) {
        this.gathering = true;
        setImmediate(() => this.sendGathered());
      }
    });
  }

  /** Sends the outcomes gathered this turn: one request per batch, in index order. */
  private sendGathered(): void {
    this.gathering = false;
    const gathered = this.gathered;
    this.gathered = new Map();
    for (const [batchId, list] of gathered) {
      // One transaction writes an item once: a second outcome of the same item goes in the next one, after it.
      const now = new Map<number, GatheredOutcome>();
      for (const outcome of list) {
        if (!now.has(outcome.row[0])) now.set(outcome.row[0], outcome);
        else void this.writeOutcome(batchId, outcome.row).then(outcome.resolve, outcome.reject);
      }
      const sent = [...now.values()].sort((a, b) => a.row[0] - b.row[0]);
      this.writeOutcomes(
        batchId,
        sent.map((o) => o.row),
      ).then(
        (written) => sent.forEach((o, k) => o.resolve(written[k]!)),
        (err: Error) => sent.forEach((o) => o.reject(err)),
      );
    }
  }

  /** Overwrites the readiness probe's row on the thread's connection (SqliteItemStore.probeNow). */
  async probe(): Promise<void> {
    await this.send({ kind: 'probe' });
  }

  private send(req: Request): Promise<boolean[] | undefined> {
    if (this.closed) return Promise.reject(new Error('item store is closed'));
    const worker = (this.worker ??= this.start());
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      worker.ref(); // a request in flight keeps the process up until it is answered
      worker.postMessage({ ...req, seq });
    });
  }

  /** Fails what is in flight and stops the thread; resolves once it has exited (its connection closed). */
  async close(): Promise<void> {
    this.closed = true;
    const closed = new Error('item store closed before its write finished');
    for (const list of this.gathered.values()) for (const o of list) o.reject(closed);
    this.gathered.clear();
    this.fail(closed);
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private start(): Worker {
    const data: StoreThreadData = { file: this.file, busyTimeoutMs: this.busyTimeoutMs };
    const worker = startModuleThread(import.meta.url, 'store-thread-main', data);
    worker.unref();
    worker.on('message', (res: StoreThreadResponse) => {
      const p = this.pending.get(res.seq);
      if (!p) return;
      this.pending.delete(res.seq);
      if (this.pending.size === 0) worker.unref();
      if (res.ok) p.resolve(res.written);
      else if ('duplicate' in res) p.reject(new DuplicateItemIdError(res.duplicate.itemId, res.duplicate.index));
      else
        p.reject(
          toStoreUnavailable(Object.assign(new Error(res.message), res.code ? { code: res.code } : {})) as Error,
        );
    });
    const died = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.fail(new Error(`item store thread failed: ${err.message}`));
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

/**
 * Rows as two strings, ids and inputs each joined by newlines, when none holds one (as a rule: ids hold no control
 * characters, and inputs' JSON text no raw newline): a string crosses to the thread as one copy, where an array of
 * rows is cloned row by row. Other rows cross as they are.
 */
function packRows(rows: ItemRow[]): PackedRows | ItemRow[] {
  if (rows.length === 0) return rows;
  const ids: string[] = [];
  const inputs: string[] = [];
  for (const [id, json] of rows) {
    if (id.includes('\n') || json.includes('\n')) return rows;
    ids.push(id);
    inputs.push(json);
  }
  return { ids: ids.join('\n'), inputs: inputs.join('\n') };
}
