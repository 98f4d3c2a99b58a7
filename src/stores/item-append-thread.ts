// Runs inside the worker thread of a SqliteItemStore (background-appender.ts): appends the items of staged batches
// on its own connection to the store's file, so the thread that parses a submission goes on to its next lines
// while SQLite inserts and commits these; and writes the readiness probe's row, so that a probe waiting on the file
// never blocks the API's thread.
import { parentPort, workerData } from 'node:worker_threads';
import { DuplicateItemIdError } from './item-store.js';
import { SqliteItemStore, type ItemRow } from './sqlite-item-store.js';

export type AppendRequest =
  { seq: number; kind: 'append'; batchId: string; from: number; rows: ItemRow[] } | { seq: number; kind: 'probe' };

/** The outcome of one request; a duplicate id carries what DuplicateItemIdError needs, any other fault its message. */
export type AppendResponse =
  | { seq: number; ok: true }
  | { seq: number; ok: false; duplicate: { itemId: string; index: number } }
  | { seq: number; ok: false; message: string; code?: string };

const store = new SqliteItemStore(workerData as string);
const port = parentPort!;
port.on('message', (req: AppendRequest) => {
  let res: AppendResponse;
  try {
    if (req.kind === 'probe') store.probeNow();
    else store.appendRows(req.batchId, req.from, req.rows);
    res = { seq: req.seq, ok: true };
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
