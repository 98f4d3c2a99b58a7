import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ItemInputs } from '../contracts/batch.js';
import type { ItemStore, ResultPage, StoredBatch, StoredItem, StoredResult } from './item-store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS batches (
  id         TEXT PRIMARY KEY,
  model      TEXT NOT NULL,
  version    INTEGER,
  total      INTEGER NOT NULL,
  options    TEXT NOT NULL,
  metadata   TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
  batch_id  TEXT NOT NULL,
  idx       INTEGER NOT NULL,
  client_id TEXT NOT NULL,
  inputs    TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS items_by_client_id ON items (batch_id, client_id);
CREATE TABLE IF NOT EXISTS results (
  batch_id    TEXT NOT NULL,
  idx         INTEGER NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
  attempts    INTEGER NOT NULL,
  result      TEXT,
  error       TEXT,
  started_at  TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
`;

/** Where the API and the workers of one machine share their item store. */
export function itemStoreFile(config: { DATA_DIR: string }): string {
  return path.join(config.DATA_DIR, 'batchline.db');
}

/** Rows per INSERT statement when storing items (SQLite allows 32,766 bound parameters). */
const INSERT_CHUNK = 500;

/**
 * The default ItemStore: one SQLite file (`<DATA_DIR>/batchline.db`) in WAL mode, shared by the API and the
 * workers of one machine. Synchronous (better-sqlite3): each call is a short local transaction.
 */
export class SqliteItemStore implements ItemStore {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL'); // durable across process crashes; WAL makes it safe
    this.db.pragma('busy_timeout = 10000'); // the API and several workers write the same file
    this.db.exec(SCHEMA);
    this.stmts = {
      insertBatch: this.db.prepare(
        'INSERT INTO batches (id, model, version, total, options, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      getBatch: this.db.prepare('SELECT * FROM batches WHERE id = ?'),
      deleteBatch: [
        this.db.prepare('DELETE FROM results WHERE batch_id = ?'),
        this.db.prepare('DELETE FROM items WHERE batch_id = ?'),
        this.db.prepare('DELETE FROM batches WHERE id = ?'),
      ],
      insertItems: this.db.prepare(
        `INSERT INTO items (batch_id, idx, client_id, inputs) VALUES ${new Array(INSERT_CHUNK).fill('(?, ?, ?, ?)').join(', ')}`,
      ),
      insertItem: this.db.prepare('INSERT INTO items (batch_id, idx, client_id, inputs) VALUES (?, ?, ?, ?)'),
      getItems: this.db.prepare('SELECT idx, client_id, inputs FROM items WHERE batch_id = ? AND idx >= ? AND idx < ? ORDER BY idx'),
      // A success is final; a failure may be replaced by a later outcome (a retried dead-letter item).
      putResult: this.db.prepare(
        `INSERT INTO results (batch_id, idx, status, attempts, result, error, started_at, finished_at)
         VALUES (@batchId, @index, @status, @attempts, @result, @error, @startedAt, @finishedAt)
         ON CONFLICT (batch_id, idx) DO UPDATE SET
           status = excluded.status, attempts = excluded.attempts, result = excluded.result, error = excluded.error,
           started_at = excluded.started_at, finished_at = excluded.finished_at
         WHERE results.status <> 'succeeded'`,
      ),
      listResults: this.db.prepare(
        `SELECT r.*, i.client_id FROM results r JOIN items i ON i.batch_id = r.batch_id AND i.idx = r.idx
         WHERE r.batch_id = ? AND r.idx >= ? ORDER BY r.idx LIMIT ?`,
      ),
      listResultsByStatus: this.db.prepare(
        `SELECT r.*, i.client_id FROM results r JOIN items i ON i.batch_id = r.batch_id AND i.idx = r.idx
         WHERE r.batch_id = ? AND r.idx >= ? AND r.status = ? ORDER BY r.idx LIMIT ?`,
      ),
      getResult: this.db.prepare(
        `SELECT r.*, i.client_id FROM results r JOIN items i ON i.batch_id = r.batch_id AND i.idx = r.idx
         WHERE r.batch_id = ? AND r.idx = ?`,
      ),
      countResults: this.db.prepare('SELECT status, COUNT(*) AS n FROM results WHERE batch_id = ? GROUP BY status'),
    };
  }

  createBatch(batch: StoredBatch, items: Iterable<{ id?: string; inputs: ItemInputs }>): void {
    const { insertBatch, insertItems, insertItem } = this.stmts;
    this.db.transaction(() => {
      let stored = 0;
      let chunk: unknown[] = [];
      for (const item of items) {
        chunk.push(batch.id, stored, item.id ?? String(stored), JSON.stringify(item.inputs));
        stored++;
        if (chunk.length === INSERT_CHUNK * 4) {
          insertItems.run(chunk);
          chunk = [];
        }
      }
      for (let i = 0; i < chunk.length; i += 4) insertItem.run(chunk.slice(i, i + 4));
      if (stored !== batch.total) throw new Error(`batch ${batch.id}: ${stored} items stored, ${batch.total} declared`);
      insertBatch.run(
        batch.id,
        batch.model,
        batch.version ?? null,
        batch.total,
        JSON.stringify(batch.options),
        batch.metadata ? JSON.stringify(batch.metadata) : null,
        batch.createdAt,
      );
    })();
  }

  getBatch(batchId: string): StoredBatch | undefined {
    const row = this.stmts.getBatch.get(batchId) as BatchRow | undefined;
    if (!row) return undefined;
    return {
      id: row.id,
      model: row.model,
      ...(row.version !== null ? { version: row.version } : {}),
      total: row.total,
      options: JSON.parse(row.options),
      ...(row.metadata ? { metadata: JSON.parse(row.metadata) } : {}),
      createdAt: row.created_at,
    };
  }

  deleteBatch(batchId: string): void {
    this.db.transaction(() => this.stmts.deleteBatch.forEach((s) => s.run(batchId)))();
  }

  getItems(batchId: string, from: number, count: number): StoredItem[] {
    const rows = this.stmts.getItems.all(batchId, from, from + count) as { idx: number; client_id: string; inputs: string }[];
    return rows.map((r) => ({ index: r.idx, id: r.client_id, inputs: JSON.parse(r.inputs) as ItemInputs }));
  }

  putResult(batchId: string, result: Omit<StoredResult, 'id'>): boolean {
    const info = this.stmts.putResult.run({
      batchId,
      index: result.index,
      status: result.status,
      attempts: result.attempts,
      result: result.result ? JSON.stringify(result.result) : null,
      error: result.error ? JSON.stringify(result.error) : null,
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
    });
    return info.changes > 0;
  }

  listResults(batchId: string, options: { cursor?: number; limit?: number; status?: StoredResult['status'] } = {}): ResultPage {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 10_000);
    const cursor = Math.max(options.cursor ?? 0, 0);
    const rows = (
      options.status
        ? this.stmts.listResultsByStatus.all(batchId, cursor, options.status, limit + 1)
        : this.stmts.listResults.all(batchId, cursor, limit + 1)
    ) as ResultRow[];
    const more = rows.length > limit;
    const page = rows.slice(0, limit).map(toResult);
    return more ? { results: page, nextCursor: page[page.length - 1]!.index + 1 } : { results: page };
  }

  getResult(batchId: string, index: number): StoredResult | undefined {
    const row = this.stmts.getResult.get(batchId, index) as ResultRow | undefined;
    return row ? toResult(row) : undefined;
  }

  countResults(batchId: string): Record<StoredResult['status'], number> {
    const counts = { succeeded: 0, failed: 0 };
    for (const row of this.stmts.countResults.all(batchId) as { status: StoredResult['status']; n: number }[]) {
      counts[row.status] = row.n;
    }
    return counts;
  }

  close(): void {
    this.db.close();
  }
}

interface BatchRow {
  id: string;
  model: string;
  version: number | null;
  total: number;
  options: string;
  metadata: string | null;
  created_at: string;
}

interface ResultRow {
  idx: number;
  client_id: string;
  status: StoredResult['status'];
  attempts: number;
  result: string | null;
  error: string | null;
  started_at: string;
  finished_at: string;
}

function toResult(row: ResultRow): StoredResult {
  return {
    index: row.idx,
    id: row.client_id,
    status: row.status,
    attempts: row.attempts,
    ...(row.result ? { result: JSON.parse(row.result) } : {}),
    ...(row.error ? { error: JSON.parse(row.error) } : {}),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}
