import type pg from 'pg';
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
import { toStoreUnavailable } from './store-unavailable.js';

/**
 * The OpenAIStore of the PostgreSQL item store, for API processes on any number of hosts. An upload inserts one
 * chunk per statement into a row marked as uploading (bytes -1), which its last statement completes. The pool
 * belongs to the caller: close() leaves it open.
 */
export class PostgresOpenAIStore implements OpenAIStore {
  constructor(private readonly pool: pg.Pool) {}

  async putFile(
    file: Omit<StoredFile, 'bytes'>,
    content: AsyncIterable<Buffer>,
    maxBytes: number,
  ): Promise<StoredFile> {
    await this.query(`INSERT INTO files (${FILE_COLUMNS}) VALUES ($1, $2, $3, $4, -1, $5)`, [
      file.id,
      file.tenant,
      file.purpose,
      file.filename,
      file.createdAt,
    ]);
    let bytes = 0;
    let n = 0;
    try {
      for await (const chunk of fileChunks(content, maxBytes)) {
        await this.query('INSERT INTO file_chunks (file_id, n, data) VALUES ($1, $2, $3)', [file.id, n++, chunk]);
        bytes += chunk.length;
      }
      await this.query('UPDATE files SET bytes = $1 WHERE id = $2', [bytes, file.id]);
      return { ...file, bytes };
    } catch (err) {
      // When the database is what failed, the row stays marked as uploading (bytes -1): no reader returns it.
      await this.query('DELETE FROM file_chunks WHERE file_id = $1', [file.id]).catch(() => undefined);
      await this.query('DELETE FROM files WHERE id = $1', [file.id]).catch(() => undefined);
      throw err;
    }
  }

  async getFile(id: string, tenant: string): Promise<StoredFile | undefined> {
    const { rows } = await this.query<FileRow>(
      `SELECT ${FILE_COLUMNS} FROM files WHERE id = $1 AND tenant = $2 AND bytes >= 0`,
      [id, tenant],
    );
    return rows[0] && toFile(rows[0]);
  }

  async listFiles(tenant: string, page: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<FilePage> {
    const dir = page.order === 'asc' ? '>' : '<';
    const order = page.order === 'asc' ? 'ASC' : 'DESC';
    const { rows } = page.after
      ? await this.query<FileRow>(
          `SELECT ${FILE_COLUMNS} FROM files WHERE tenant = $1 AND bytes >= 0
             AND (created_at, id) ${dir} (SELECT created_at, id FROM files WHERE id = $2 AND tenant = $1)
           ORDER BY created_at ${order}, id ${order} LIMIT $3`,
          [tenant, page.after, page.limit + 1],
        )
      : await this.query<FileRow>(
          `SELECT ${FILE_COLUMNS} FROM files WHERE tenant = $1 AND bytes >= 0
           ORDER BY created_at ${order}, id ${order} LIMIT $2`,
          [tenant, page.limit + 1],
        );
    return { files: rows.slice(0, page.limit).map(toFile), hasMore: rows.length > page.limit };
  }

  async *readFile(id: string): AsyncGenerator<Buffer> {
    for (let n = 0; ; n++) {
      const { rows } = await this.query<{ data: Buffer }>(
        'SELECT data FROM file_chunks WHERE file_id = $1 AND n = $2',
        [id, n],
      );
      if (!rows[0]) return;
      yield rows[0].data;
    }
  }

  async deleteFile(id: string, tenant: string): Promise<boolean> {
    // One statement, so the file and its chunks go together.
    const { rows } = await this.query<{ n: number }>(
      `WITH gone AS (DELETE FROM files WHERE id = $1 AND tenant = $2 AND bytes >= 0 RETURNING id),
            chunks AS (DELETE FROM file_chunks WHERE file_id IN (SELECT id FROM gone))
       SELECT COUNT(*)::int AS n FROM gone`,
      [id, tenant],
    );
    return rows[0]!.n > 0;
  }

  async putBatch(record: OpenAIBatchRecord): Promise<void> {
    await this.query('INSERT INTO openai_batches (id, tenant, created_at, record) VALUES ($1, $2, $3, $4)', [
      record.id,
      record.tenant,
      record.createdAt,
      JSON.stringify(record),
    ]);
  }

  async getBatch(id: string, tenant: string): Promise<OpenAIBatchRecord | undefined> {
    const { rows } = await this.query<{ record: string }>(
      'SELECT record FROM openai_batches WHERE id = $1 AND tenant = $2',
      [id, tenant],
    );
    return rows[0] && (JSON.parse(rows[0].record) as OpenAIBatchRecord);
  }

  async listBatches(tenant: string, page: { after?: string; limit: number }): Promise<OpenAIBatchRecord[]> {
    const { rows } = page.after
      ? await this.query<{ record: string }>(
          `SELECT record FROM openai_batches WHERE tenant = $1
             AND (created_at, id) < (SELECT created_at, id FROM openai_batches WHERE id = $2 AND tenant = $1)
           ORDER BY created_at DESC, id DESC LIMIT $3`,
          [tenant, page.after, page.limit],
        )
      : await this.query<{ record: string }>(
          'SELECT record FROM openai_batches WHERE tenant = $1 ORDER BY created_at DESC, id DESC LIMIT $2',
          [tenant, page.limit],
        );
    return rows.map((r) => JSON.parse(r.record) as OpenAIBatchRecord);
  }

  async removeBatch(id: string): Promise<void> {
    await this.query('DELETE FROM openai_batches WHERE id = $1', [id]);
  }

  async markCancelling(id: string, at: number): Promise<void> {
    // One statement: of two racing cancels, the first one's time stays.
    await this.query(
      `UPDATE openai_batches SET record = jsonb_set(record::jsonb, '{cancellingAt}', to_jsonb($2::bigint))::text
       WHERE id = $1 AND NOT (record::jsonb ? 'cancellingAt')`,
      [id, at],
    );
  }

  async close(): Promise<void> {}

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw toStoreUnavailable(err);
    }
  }
}
