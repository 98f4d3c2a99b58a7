// Runs inside a SqliteItemStore's own thread (store-thread.ts), on its own connection to the store's file: appends
// the items of staged batches, writes the readiness probe's row, and writes a worker's chunk outcomes, so the
// calling thread goes on meanwhile.
import { parentPort, workerData } from 'node:worker_threads';
import { DuplicateItemIdError, type ItemRow } from './item-store.js';
import { SqliteItemStore, type OutcomeRow } from './sqlite-item-store.js';

export interface StoreThreadData {
  file: string;
  busyTimeoutMs?: number;
}

/** Rows packed for the crossing (store-thread.ts packRows): ids and inputs, each joined by newlines. */
export interface PackedRows {
  ids: string;
  inputs: string;
}

export type StoreThreadRequest =
  | { seq: number; kind: 'append'; batchId: string; from: number; rows: PackedRows | ItemRow[]; perBlock: number }
  | { seq: number; kind: 'outcomes'; batchId: string; rows: OutcomeRow[] }
  | { seq: number; kind: 'probe' };

/**
 * The outcome of one request (with which outcomes were written, for 'outcomes'); a duplicate id carries what
 * DuplicateItemIdError needs, any other fault its message and code.
 */
export type StoreThreadResponse =
  | { seq: number; ok: true; written?: boolean[] }
  | { seq: number; ok: false; duplicate: { itemId: string; index: number } }
  | { seq: number; ok: false; message: string; code?: string };

const { file, busyTimeoutMs } = workerData as StoreThreadData;
const store = new SqliteItemStore(file, { busyTimeoutMs });
const port = parentPort!;
port.on('message', (req: StoreThreadRequest) => {
  let res: StoreThreadResponse;
  try {
    if (req.kind === 'probe') {
      store.probeNow();
      res = { seq: req.seq, ok: true };
    } else if (req.kind === 'outcomes')
      res = { seq: req.seq, ok: true, written: store.writeOutcomes(req.batchId, req.rows) };
    else {
      store.stageRows(req.batchId, req.from, unpackRows(req.rows), req.perBlock);
      res = { seq: req.seq, ok: true };
    }
  } catch (err) {
    if (err instanceof DuplicateItemIdError)
      res = { seq: req.seq, ok: false, duplicate: { itemId: err.itemId, index: err.index } };
    else {
      const code = (err as { code?: unknown }).code;
      res = { seq: req.seq, ok: false, message: (err as Error).message, ...(typeof code === 'string' ? { code } : {}) };
    }
  }
  port.postMessage(res);
});

function unpackRows(rows: PackedRows | ItemRow[]): ItemRow[] {
  if (Array.isArray(rows)) return rows;
  const ids = rows.ids.split('\n');
  const inputs = rows.inputs.split('\n');
  return inputs.map((json, i) => [ids[i]!, json]);
}
