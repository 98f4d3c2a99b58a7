import type Database from 'better-sqlite3';
import {
  FILE_COLUMNS,
  fileChunks,
  toFile,
  type FileRow,
  type FilePage,
  type OpenAIBatchRecord,
  type OpenAIStore,
  type StoredFile,
} from './openai-store.js';
import { openSqlite } from './sqlite.js';
import { guardStorage } from './store-unavailable.js';

/**
 * The OpenAIStore of the SQLite item store (`<DATA_DIR>/batchline.db`). An upload writes one chunk per statement
 * (the file is left to other writers between them) into a row marked as uploading (bytes -1), which the last
 * statement completes.
 */
export class SqliteOpenAIStore implements OpenAIStore {
  private readonly db: Database.Database;
  private readonly stmts;

  /** `file` must hold the item store's schema: open the SqliteItemStore (which migrates it) first. */
  constructor(file: string) {
    this.db = openSqlite(file);
    this.stmts = {
      insertFile: this.db.prepare(`INSERT INTO files (${FILE_COLUMNS}) VALUES (?, ?, ?, ?, -1, ?)`),
      insertChunk: this.db.prepare('INSERT INTO file_chunks (file_id, n, data) VALUES (?, ?, ?)'),
      completeFile: this.db.prepare('UPDATE files SET bytes = ? WHERE id = ?'),
      getFile: this.db.prepare(`SELECT ${FILE_COLUMNS} FROM files WHERE id = ? AND tenant = ? AND bytes >= 0`),
      fileAt: this.db.prepare('SELECT created_at FROM files WHERE id = ? AND tenant = ?'),
      chunk: this.db.prepare('SELECT data FROM file_chunks WHERE file_id = ? AND n = ?'),
      deleteChunks: this.db.prepare('DELETE FROM file_chunks WHERE file_id = ?'),
      deleteFile: this.db.prepare('DELETE FROM files WHERE id = ? AND tenant = ? AND bytes >= 0'),
      deleteUpload: this.db.prepare('DELETE FROM files WHERE id = ?'),
      insertBatch: this.db.prepare('INSERT INTO openai_batches (id, tenant, created_at, record) VALUES (?, ?, ?, ?)'),
      getBatch: this.db.prepare('SELECT record FROM openai_batches WHERE id = ? AND tenant = ?'),
      batchAt: this.db.prepare('SELECT created_at FROM openai_batches WHERE id = ? AND tenant = ?'),
      updateBatch: this.db.prepare('UPDATE openai_batches SET record = ? WHERE id = ?'),
      getAnyBatch: this.db.prepare('SELECT record FROM openai_batches WHERE id = ?'),
      removeBatch: this.db.prepare('DELETE FROM openai_batches WHERE id = ?'),
    };
  }

  async putFile(
    file: Omit<StoredFile, 'bytes'>,
    content: AsyncIterable<Buffer>,
    maxBytes: number,
  ): Promise<StoredFile> {
    guardStorage(() => this.stmts.insertFile.run(file.id, file.tenant, file.purpose, file.filename, file.createdAt));
    let bytes = 0;
    let n = 0;
    try {
      for await (const chunk of fileChunks(content, maxBytes)) {
        guardStorage(() => this.stmts.insertChunk.run(file.id, n++, chunk));
        bytes += chunk.length;
      }
      guardStorage(() => this.stmts.completeFile.run(bytes, file.id));
      return { ...file, bytes };
    } catch (err) {
      this.removeUpload(file.id);
      throw err;
    }
  }

  async getFile(id: string, tenant: string): Promise<StoredFile | undefined> {
    const row = guardStorage(() => this.stmts.getFile.get(id, tenant) as FileRow | undefined);
    return row && toFile(row);
  }

  async listFiles(tenant: string, page: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<FilePage> {
    const dir = page.order === 'asc' ? '>' : '<';
    const order = page.order === 'asc' ? 'ASC' : 'DESC';
    return guardStorage(() => {
      const after = page.after
        ? (this.stmts.fileAt.get(page.after, tenant) as { created_at: number } | undefined)
        : undefined;
      if (page.after && !after) return { files: [], hasMore: false };
      const rows = (
        after
          ? this.db
              .prepare(
                `SELECT ${FILE_COLUMNS} FROM files WHERE tenant = ? AND bytes >= 0 AND (created_at, id) ${dir} (?, ?)
                 ORDER BY created_at ${order}, id ${order} LIMIT ?`,
              )
              .all(tenant, after.created_at, page.after, page.limit + 1)
          : this.db
              .prepare(
                `SELECT ${FILE_COLUMNS} FROM files WHERE tenant = ? AND bytes >= 0
                 ORDER BY created_at ${order}, id ${order} LIMIT ?`,
              )
              .all(tenant, page.limit + 1)
      ) as FileRow[];
      return { files: rows.slice(0, page.limit).map(toFile), hasMore: rows.length > page.limit };
    });
  }

  async *readFile(id: string): AsyncGenerator<Buffer> {
    for (let n = 0; ; n++) {
      const row = guardStorage(() => this.stmts.chunk.get(id, n) as { data: Buffer } | undefined);
      if (!row) return;
      yield row.data;
    }
  }

  async deleteFile(id: string, tenant: string): Promise<boolean> {
    return guardStorage(() =>
      this.db.transaction(() => {
        const deleted = this.stmts.deleteFile.run(id, tenant).changes > 0;
        if (deleted) this.stmts.deleteChunks.run(id);
        return deleted;
      })(),
    );
  }

  async putBatch(record: OpenAIBatchRecord): Promise<void> {
    guardStorage(() => this.stmts.insertBatch.run(record.id, record.tenant, record.createdAt, JSON.stringify(record)));
  }

  async getBatch(id: string, tenant: string): Promise<OpenAIBatchRecord | undefined> {
    const row = guardStorage(() => this.stmts.getBatch.get(id, tenant) as { record: string } | undefined);
    return row && (JSON.parse(row.record) as OpenAIBatchRecord);
  }

  async listBatches(tenant: string, page: { after?: string; limit: number }): Promise<OpenAIBatchRecord[]> {
    return guardStorage(() => {
      const after = page.after
        ? (this.stmts.batchAt.get(page.after, tenant) as { created_at: number } | undefined)
        : undefined;
      if (page.after && !after) return [];
      const rows = (
        after
          ? this.db
              .prepare(
                `SELECT record FROM openai_batches WHERE tenant = ? AND (created_at, id) < (?, ?)
                 ORDER BY created_at DESC, id DESC LIMIT ?`,
              )
              .all(tenant, after.created_at, page.after, page.limit)
          : this.db
              .prepare('SELECT record FROM openai_batches WHERE tenant = ? ORDER BY created_at DESC, id DESC LIMIT ?')
              .all(tenant, page.limit)
      ) as { record: string }[];
      return rows.map((r) => JSON.parse(r.record) as OpenAIBatchRecord);
    });
  }

  async removeBatch(id: string): Promise<void> {
    guardStorage(() => this.stmts.removeBatch.run(id));
  }

  async markCancelling(id: string, at: number): Promise<void> {
    guardStorage(() =>
      this.db
        .transaction(() => {
          const row = this.stmts.getAnyBatch.get(id) as { record: string } | undefined;
          if (!row) return;
          const record = JSON.parse(row.record) as OpenAIBatchRecord;
          if (record.cancellingAt !== undefined) return;
          this.stmts.updateBatch.run(JSON.stringify({ ...record, cancellingAt: at }), id);
        })
        .immediate(),
    );
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private removeUpload(id: string): void {
    try {
      this.db.transaction(() => {
        this.stmts.deleteChunks.run(id);
        this.stmts.deleteUpload.run(id);
      })();
    } catch {
      // The storage failed; the row stays marked as uploading (bytes -1), which no reader ever returns.
    }
  }
}
