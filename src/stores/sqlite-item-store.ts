import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { StoreThread } from './store-thread.js';
import {
  blockCounts,
  toBatch,
  toEvent,
  toFailedDelivery,
  toResult,
  toItems,
  type BatchRow,
  type BlockRow,
  type EventRow,
  type FailureRow,
  type ResultRow,
} from './item-rows.js';
import { MIGRATIONS_TABLE_DDL, pendingMigrations } from './migrations.js';
import { WriteWaiters } from './write-waiters.js';
import { openSqlite } from './sqlite.js';
import { guardStorage } from './store-unavailable.js';
import type { BatchEnd } from '../contracts/batch.js';
import type { FailedDelivery } from '../contracts/webhook.js';
import {
  DEFAULT_ITEM_ID,
  DuplicateItemIdError,
  type BlockCounts,
  COUNTED_BLOCK,
  type Expired,
  itemBlocks,
  itemRow,
  itemsPerBlock,
  type ItemRow,
  type ItemStore,
  type NewItem,
  type ResultPage,
  type StoredBatch,
  type StoredEvent,
  type StoredItem,
  type StoredResult,
} from './item-store.js';

/** Where the API and the workers of one machine share their item store. */
export function itemStoreFile(config: { DATA_DIR: string }): string {
  return path.join(config.DATA_DIR, 'batchline.db');
}

/** Columns the oldest files (from before versioned migrations) lack: added before migration 1 runs. */
const LEGACY_COLUMNS: [table: string, column: string, ddl: string][] = [
  ['batches', 'tenant', "ALTER TABLE batches ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'"],
  ['batches', 'webhook', 'ALTER TABLE batches ADD COLUMN webhook TEXT'],
];

/** Items createBatch stages at a time. */
const INSERT_CHUNK = 500;

/**
 * Outcomes per statement in putResults: a run's results, then their events, go in multi-row statements of up to this
 * many rows, where two statements per outcome spent most of a write on binding and stepping (BENCHMARKS.md:
 * "Chunked items, 2026-12-03").
 */
const RESULT_ROWS_PER_STATEMENT = 64;

/**
 * Upserts outcomes, answering the index of each row written. A success is final; a failure may be replaced by a later
 * outcome (a retried dead-letter item), but not by the same failure again (its activity and the workflow may both
 * record it). A row the WHERE keeps as it is returns nothing.
 */
const putResultsSql = (rows: number) =>
  `INSERT INTO results (batch_id, idx, status, attempts, result, error, started_at, finished_at)
   VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
   ON CONFLICT (batch_id, idx) DO UPDATE SET
     status = excluded.status, attempts = excluded.attempts, result = excluded.result, error = excluded.error,
     started_at = excluded.started_at, finished_at = excluded.finished_at
   WHERE results.status <> 'succeeded'
     AND NOT (results.status = 'failed' AND excluded.status = 'failed' AND results.attempts = excluded.attempts
              AND results.error IS excluded.error)
   RETURNING idx`;

/** Appends the events of written outcomes, in the order given. */
const appendEventsSql = (rows: number) =>
  `INSERT INTO events (batch_id, idx, status, attempts, error, finished_at)
   VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?)').join(', ')}`;

/**
 * An outcome as putResults writes it: index, status, attempts, result and error as JSON text (or null), startedAt,
 * finishedAt.
 */
export type OutcomeRow = [
  index: number,
  status: StoredResult['status'],
  attempts: number,
  result: string | null,
  error: string | null,
  startedAt: string,
  finishedAt: string,
];

/**
 * The default ItemStore: one SQLite file (`<DATA_DIR>/batchline.db`) in WAL mode, shared by the API and the
 * workers of one machine. better-sqlite3 is synchronous: each call is a short local transaction, answered as a
 * resolved promise (appends of staged uploads run on a thread of their own). Transactions that write begin
 * IMMEDIATE (take the write lock first, waiting out busy_timeout): a deferred one that reads before it writes fails
 * at once with SQLITE_BUSY_SNAPSHOT when another process committed in between, which made a second 100k-item
 * submission fail while the first batch's results were being written.
 */
export class SqliteItemStore implements ItemStore {
  readonly backend = 'sqlite';
  readonly appendSize = 500;
  private readonly db: Database.Database;
  private readonly stmts;
  /** putResultsSql and appendEventsSql by row count, prepared when first used. */
  private readonly resultStatements = new Map<number, { put: Database.Statement; events: Database.Statement }>();
  /**
   * Watches the write-ahead log while nextWrite() has waiters (undefined while it has none); null once watching
   * turned out impossible (polling only).
   */
  private walWatcher: fs.FSWatcher | null | undefined;
  private readonly writeWaiters = new WriteWaiters(() => this.unwatchWal());
  /** The store's own thread: appends of staged uploads, and outcomes when outcomesOnThread. */
  private readonly thread: StoreThread;
  private readonly outcomesOnThread: boolean;
  /** The probe in flight, which callers meanwhile share. */
  private probing: Promise<void> | undefined;

  /**
   * `busyTimeoutMs` (after the migrations, which wait the default): how long a write waits for another process's
   * write lock before it fails with StoreUnavailableError. better-sqlite3 waits on the calling thread, so a worker
   * keeps it short: its event loop, and with it its heartbeats, must not stop for longer than the heartbeat timeout.
   * `outcomesOnThread`: outcomes are written on the store's thread, so the calling thread goes on meanwhile (a
   * worker's main thread also runs its Temporal workflow tasks: while it wrote, a shard's next workflow task waited,
   * and chunks ran one at a time). A chunk's run goes as one transaction; single outcomes (items of their own
   * activities) given in one turn of the event loop are written together (StoreThread.writeOutcome).
   */
  constructor(
    private readonly file: string,
    { busyTimeoutMs, outcomesOnThread = false }: { busyTimeoutMs?: number; outcomesOnThread?: boolean } = {},
  ) {
    this.db = openSqlite(file);
    this.thread = new StoreThread(file, busyTimeoutMs);
    this.outcomesOnThread = outcomesOnThread;
    try {
      this.migrate();
    } catch (err) {
      this.db.close(); // a schema this code must not touch (or a broken file): nothing stays open
      throw err;
    }
    if (busyTimeoutMs !== undefined) this.db.pragma(`busy_timeout = ${Math.floor(busyTimeoutMs)}`);
    this.stmts = {
      insertBatch: this.db.prepare(
        'INSERT INTO batches (id, model, version, total, options, metadata, created_at, tenant, webhook) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      countItems: this.db.prepare('SELECT COALESCE(SUM(n), 0) AS n FROM item_blocks WHERE batch_id = ?'),
      findExplicitId: this.db.prepare('SELECT idx FROM item_ids WHERE batch_id = ? AND client_id = ?'),
      /** The id a client gave item idx, if any. */
      explicitIdAt: this.db.prepare('SELECT client_id FROM item_ids WHERE batch_id = ? AND idx = ?'),
      /** The last block that starts at or before an index: it holds that item if the batch has it. */
      blockBefore: this.db.prepare(
        'SELECT first, n FROM item_blocks WHERE batch_id = ? AND first <= ? ORDER BY first DESC LIMIT 1',
      ),
      /** Whether any client id of the batch starts with a digit, so it might read as another item's index. */
      anyNumericId: this.db.prepare(
        "SELECT 1 FROM item_ids WHERE batch_id = ? AND client_id >= '0' AND client_id < ':' LIMIT 1",
      ),
      // The upload's last append: an upload still streaming is never swept as stale.
      stageUpload: this.db.prepare(
        'INSERT INTO uploads (batch_id, started_at) VALUES (?, ?) ON CONFLICT (batch_id) DO UPDATE SET started_at = excluded.started_at',
      ),
      isCommitted: this.db.prepare('SELECT 1 FROM batches WHERE id = ?'),
      unstageUpload: this.db.prepare('DELETE FROM uploads WHERE batch_id = ?'),
      appendEnd: this.db.prepare(
        `INSERT INTO events (batch_id, idx, status, attempts, finished_at, kind, summary)
         VALUES (?, -1, ?, 0, ?, 'end', ?) ON CONFLICT DO NOTHING`,
      ),
      markEnded: this.db.prepare('UPDATE batches SET ended_at = ? WHERE id = ?'),
      getEnd: this.db.prepare("SELECT status, summary FROM events WHERE batch_id = ? AND kind = 'end'"),
      listEvents: this.db.prepare(
        `SELECT e.seq, e.kind, e.idx, e.status, e.attempts, e.error, e.finished_at, e.summary, i.client_id, r.result
         FROM events e LEFT JOIN item_ids i ON i.batch_id = e.batch_id AND i.idx = e.idx
         LEFT JOIN results r ON e.status = 'succeeded' AND r.batch_id = e.batch_id AND r.idx = e.idx
         WHERE e.batch_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?`,
      ),
      putFailedDelivery: this.db.prepare(
        `INSERT INTO webhook_failures (batch_id, message_id, event_type, attempts, last_error, failed_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      listFailedDeliveries: this.db.prepare(
        'SELECT * FROM webhook_failures WHERE batch_id = ? ORDER BY failed_at, message_id',
      ),
      getBatch: this.db.prepare('SELECT * FROM batches WHERE id = ?'),
      deleteBatch: [
        this.db.prepare('DELETE FROM events WHERE batch_id = ?'),
        this.db.prepare('DELETE FROM webhook_failures WHERE batch_id = ?'),
        this.db.prepare('DELETE FROM results WHERE batch_id = ?'),
        this.db.prepare('DELETE FROM result_blocks WHERE batch_id = ?'),
        this.db.prepare('DELETE FROM item_blocks WHERE batch_id = ?'),
        this.db.prepare('DELETE FROM item_ids WHERE batch_id = ?'),
        this.db.prepare('DELETE FROM uploads WHERE batch_id = ?'),
        this.db.prepare('DELETE FROM batches WHERE id = ?'),
      ],
      endedBefore: this.db.prepare(
        'SELECT id AS batch_id FROM batches WHERE ended_at IS NOT NULL AND ended_at < ? LIMIT 100',
      ),
      stagedBefore: this.db.prepare(
        'SELECT u.batch_id FROM uploads u WHERE u.started_at < ? AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = u.batch_id) LIMIT 100',
      ),
      insertBlock: this.db.prepare('INSERT INTO item_blocks (batch_id, first, n, inputs) VALUES (?, ?, ?, ?)'),
      insertId: this.db.prepare('INSERT INTO item_ids (batch_id, idx, client_id) VALUES (?, ?, ?)'),
      /**
       * The blocks that may hold items [@from, @to): the last one starting at or before @from (one seek, however
       * small the blocks), then those starting inside the range.
       */
      getBlocks: this.db.prepare(
        `SELECT first, n, inputs FROM item_blocks WHERE batch_id = @batchId
           AND first = (SELECT MAX(first) FROM item_blocks WHERE batch_id = @batchId AND first <= @from)
         UNION ALL
         SELECT first, n, inputs FROM item_blocks WHERE batch_id = @batchId AND first > @from AND first < @to
         ORDER BY first`,
      ),
      getIds: this.db.prepare('SELECT idx, client_id FROM item_ids WHERE batch_id = ? AND idx >= ? AND idx < ?'),
      listResults: this.db.prepare(
        `SELECT r.*, COALESCE(i.client_id, '') AS client_id FROM results r
         LEFT JOIN item_ids i ON i.batch_id = r.batch_id AND i.idx = r.idx
         WHERE r.batch_id = ? AND r.idx >= ? AND r.idx < ? ORDER BY r.idx LIMIT ?`,
      ),
      listResultsByStatus: this.db.prepare(
        `SELECT r.*, COALESCE(i.client_id, '') AS client_id FROM results r
         LEFT JOIN item_ids i ON i.batch_id = r.batch_id AND i.idx = r.idx
         WHERE r.batch_id = ? AND r.idx >= ? AND r.idx < ? AND r.status = ? ORDER BY r.idx LIMIT ?`,
      ),
      getResult: this.db.prepare(
        `SELECT r.*, COALESCE(i.client_id, '') AS client_id FROM results r
         LEFT JOIN item_ids i ON i.batch_id = r.batch_id AND i.idx = r.idx
         WHERE r.batch_id = ? AND r.idx = ?`,
      ),
      countBlock: this.db.prepare(
        `INSERT INTO result_blocks (batch_id, block, succeeded, failed) VALUES (?, ?, ?, ?)
         ON CONFLICT (batch_id, block) DO UPDATE SET
           succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed`,
      ),
      countResults: this.db.prepare(
        'SELECT COALESCE(SUM(succeeded), 0) AS succeeded, COALESCE(SUM(failed), 0) AS failed FROM result_blocks WHERE batch_id = ?',
      ),
      countResultsByBlock: this.db.prepare(
        'SELECT idx / CAST(? AS INTEGER) AS block, status, COUNT(*) AS n FROM results WHERE batch_id = ? GROUP BY block, status ORDER BY block',
      ),
      countCountedBlocks: this.db.prepare(
        `SELECT block / CAST(? AS INTEGER) AS block, SUM(succeeded) AS succeeded, SUM(failed) AS failed
         FROM result_blocks WHERE batch_id = ? GROUP BY 1 HAVING SUM(succeeded) + SUM(failed) > 0 ORDER BY 1`,
      ),
      probe: this.db.prepare(
        'INSERT INTO store_probe (id, probed_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at',
      ),
    };
    // Started with the store (once migrated): no chunk's first outcomes wait for the thread's start-up.
    if (outcomesOnThread) this.thread.prestart();
  }

  /**
   * Applies the migrations this file lacks (migrations.ts), in one write transaction: processes may start at once. A
   * file already at this schema is only read, so opening it never waits for another connection's write lock (a
   * process stopped inside a write transaction would hold it as long as it stays stopped).
   */
  private migrate(): void {
    const tracked = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
      .get();
    if (tracked) {
      const { v } = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
      if (v !== null && pendingMigrations(v, this.file).length === 0) return; // refuses a newer schema
    }
    this.db
      .transaction(() => {
        this.db.exec(MIGRATIONS_TABLE_DDL);
        const found = (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null })
          .v;
        if (found === null && this.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'batches'").get()) {
          for (const [table, column, ddl] of LEGACY_COLUMNS) {
            const columns = this.db.pragma(`table_info(${table})`) as { name: string }[];
            if (!columns.some((c) => c.name === column)) this.db.exec(ddl);
          }
        }
        const record = this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
        for (const m of pendingMigrations(found ?? 0, this.file)) {
          this.db.exec(m.sqlite);
          record.run(m.version, m.name, new Date().toISOString());
        }
      })
      .immediate();
  }

  async createBatch(batch: StoredBatch, items: Iterable<NewItem>): Promise<void> {
    const perBlock = itemsPerBlock(batch.options);
    this.writeTransaction(() => {
      let chunk: NewItem[] = [];
      let stored = 0;
      for (const item of items) {
        chunk.push(item);
        if (chunk.length === INSERT_CHUNK) {
          this.stageRows(batch.id, stored, chunk.map(itemRow), perBlock);
          stored += chunk.length;
          chunk = [];
        }
      }
      this.stageRows(batch.id, stored, chunk.map(itemRow), perBlock);
      this.commitNow(batch);
    });
  }

  appendRows(batchId: string, from: number, rows: ItemRow[], perBlock = 1): Promise<void> {
    return this.thread.append(batchId, from, rows, perBlock);
  }

  /**
   * Stages items already in their stored form, on this thread (the store thread's entry point): blocks of up to
   * `perBlock` items (MAX_ITEMS_PER_BLOCK at most; an item whose text holds a newline is a block of its own), and a
   * row of item_ids for each id a client gave.
   */
  stageRows(batchId: string, from: number, rows: ItemRow[], perBlock = 1): void {
    const { insertBlock, insertId, anyNumericId, stageUpload } = this.stmts;
    try {
      this.db
        .transaction(() => {
          stageUpload.run(batchId, new Date().toISOString());
          for (const { at, n, inputs } of itemBlocks(rows, perBlock)) insertBlock.run(batchId, from + at, n, inputs);
          for (let k = 0; k < rows.length; k++) if (rows[k]![0] !== '') insertId.run(batchId, from + k, rows[k]![0]);
          // A given id such as '7' clashes with item 7's default id: the unique index cannot see that.
          if (anyNumericId.get(batchId) && this.idClash(batchId, from, rows)) throw new IdClash();
        })
        .immediate();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (!(err instanceof IdClash) && code !== 'SQLITE_CONSTRAINT_PRIMARYKEY' && code !== 'SQLITE_CONSTRAINT_UNIQUE')
        throw err;
      // Name the first offending item: one lookup per item of this (failed, rolled back) append.
      const seen = new Set<string>();
      for (const [i, [given]] of rows.entries()) {
        const id = given || String(from + i);
        if (seen.has(id) || this.findIndex(batchId, id) !== undefined) throw new DuplicateItemIdError(id, from + i);
        seen.add(id);
      }
      throw err;
    }
  }

  /**
   * Whether an item of [from, from + rows.length) has an id another item of the batch also has, between an id a
   * client gave and an item's default id (its index): item i without a given id against a given id String(i), and a
   * given id that reads as index j against item j, if that item has no given id.
   */
  private idClash(batchId: string, from: number, rows: ItemRow[]): boolean {
    const { findExplicitId, explicitIdAt } = this.stmts;
    for (let k = 0; k < rows.length; k++) {
      const given = rows[k]![0];
      if (given === '') {
        if (findExplicitId.get(batchId, String(from + k))) return true;
      } else if (DEFAULT_ITEM_ID.test(given)) {
        const j = Number(given);
        if (j !== from + k && this.hasItem(batchId, j) && !explicitIdAt.get(batchId, j)) return true;
      }
    }
    return false;
  }

  /** Whether the batch holds item `index` (staged or committed). */
  private hasItem(batchId: string, index: number): boolean {
    const block = this.stmts.blockBefore.get(batchId, index) as { first: number; n: number } | undefined;
    return block !== undefined && block.first + block.n > index;
  }

  async commitBatch(batch: StoredBatch): Promise<void> {
    this.writeTransaction(() => this.commitNow(batch));
  }

  private commitNow(batch: StoredBatch): void {
    const { n } = this.stmts.countItems.get(batch.id) as { n: number };
    if (n !== batch.total) throw new Error(`batch ${batch.id}: ${n} items stored, ${batch.total} declared`);
    this.stmts.insertBatch.run(
      batch.id,
      batch.model,
      batch.version ?? null,
      batch.total,
      JSON.stringify(batch.options),
      batch.metadata ? JSON.stringify(batch.metadata) : null,
      batch.createdAt,
      batch.tenant,
      batch.webhook ? JSON.stringify(batch.webhook) : null,
    );
    this.stmts.unstageUpload.run(batch.id);
  }

  async getBatch(batchId: string): Promise<StoredBatch | undefined> {
    const row = guardStorage(() => this.stmts.getBatch.get(batchId)) as BatchRow | undefined;
    return row ? toBatch(row) : undefined;
  }

  async deleteBatch(batchId: string): Promise<void> {
    this.writeTransaction(() => this.stmts.deleteBatch.forEach((s) => s.run(batchId)));
  }

  async getItems(batchId: string, from: number, count: number): Promise<StoredItem[]> {
    const to = from + count;
    const [blocks, ids] = guardStorage(() => [
      this.stmts.getBlocks.all({ batchId, from, to }) as BlockRow[],
      this.stmts.getIds.all(batchId, from, to) as { idx: number; client_id: string }[],
    ]);
    return toItems(batchId, blocks, ids, from, to);
  }

  async putResult(batchId: string, result: Omit<StoredResult, 'id'>): Promise<boolean> {
    return (await this.putResults(batchId, [result]))[0]!;
  }

  async putResults(batchId: string, results: Omit<StoredResult, 'id'>[]): Promise<boolean[]> {
    if (results.length === 0) return [];
    // Written in index order (their events too), as PostgreSQL writes them; answered in the caller's order.
    const order = results.map((_, k) => k).sort((a, b) => results[a]!.index - results[b]!.index);
    const rows = order.map((k): OutcomeRow => {
      const r = results[k]!;
      const result = r.result ? JSON.stringify(r.result) : null;
      const error = r.error ? JSON.stringify(r.error) : null;
      return [r.index, r.status, r.attempts, result, error, r.startedAt, r.finishedAt];
    });
    const wrote = !this.outcomesOnThread
      ? guardStorage(() => this.writeOutcomes(batchId, rows))
      : rows.length > 1
        ? await this.thread.writeOutcomes(batchId, rows)
        : [await this.thread.writeOutcome(batchId, rows[0]!)];
    const written = new Array<boolean>(results.length);
    order.forEach((k, position) => (written[k] = wrote[position]!));
    return written;
  }

  /**
   * Writes outcomes given in index order, with their events and counts, in one IMMEDIATE transaction; answers
   * which were written (putResults, and the store thread's entry point: a fault is thrown as SQLite raised it).
   */
  writeOutcomes(batchId: string, rows: OutcomeRow[]): boolean[] {
    const written = new Array<boolean>(rows.length).fill(false);
    this.db
      .transaction(() => {
        const counted: BlockCounts[] = [];
        for (let from = 0; from < rows.length; from += RESULT_ROWS_PER_STATEMENT) {
          const group = rows.slice(from, from + RESULT_ROWS_PER_STATEMENT);
          const { put } = this.resultStatementsFor(group.length);
          const wrote = new Set(
            (put.all(group.flatMap((row) => [batchId, ...row])) as { idx: number }[]).map((row) => row.idx),
          );
          const events: unknown[] = [];
          for (const [g, [index, status, attempts, , error, , finishedAt]] of group.entries()) {
            if (!wrote.has(index)) continue;
            written[from + g] = true;
            events.push(batchId, index, status, attempts, error, finishedAt);
            const block = Math.floor(index / COUNTED_BLOCK);
            if (counted.at(-1)?.block !== block) counted.push({ block, succeeded: 0, failed: 0 });
            counted.at(-1)![status]++;
          }
          if (events.length > 0) this.resultStatementsFor(events.length / 6).events.run(events);
        }
        // What a written outcome replaced, the results_replaced trigger has taken away (migration 6).
        for (const c of counted) this.stmts.countBlock.run(batchId, c.block, c.succeeded, c.failed);
      })
      .immediate();
    return written;
  }

  private resultStatementsFor(rows: number): { put: Database.Statement; events: Database.Statement } {
    let statements = this.resultStatements.get(rows);
    if (!statements) {
      statements = { put: this.db.prepare(putResultsSql(rows)), events: this.db.prepare(appendEventsSql(rows)) };
      this.resultStatements.set(rows, statements);
    }
    return statements;
  }

  async endBatch(batchId: string, end: BatchEnd): Promise<boolean> {
    return this.writeTransaction(() => {
      const at = new Date().toISOString();
      if (this.stmts.appendEnd.run(batchId, end.status, at, JSON.stringify(end.summary)).changes === 0) return false;
      this.stmts.markEnded.run(at, batchId);
      return true;
    });
  }

  async getEnd(batchId: string): Promise<BatchEnd | undefined> {
    const row = guardStorage(() => this.stmts.getEnd.get(batchId)) as
      { status: BatchEnd['status']; summary: string } | undefined;
    return row ? { status: row.status, summary: JSON.parse(row.summary) } : undefined;
  }

  async listResults(
    batchId: string,
    options: { cursor?: number; end?: number; limit?: number; status?: StoredResult['status'] } = {},
  ): Promise<ResultPage> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 10_000);
    const cursor = Math.max(options.cursor ?? 0, 0);
    const end = options.end ?? Number.MAX_SAFE_INTEGER;
    const rows = guardStorage(() =>
      options.status
        ? this.stmts.listResultsByStatus.all(batchId, cursor, end, options.status, limit + 1)
        : this.stmts.listResults.all(batchId, cursor, end, limit + 1),
    ) as ResultRow[];
    const more = rows.length > limit;
    const page = rows.slice(0, limit).map(toResult);
    return more ? { results: page, nextCursor: page[page.length - 1]!.index + 1 } : { results: page };
  }

  async getResult(batchId: string, index: number): Promise<StoredResult | undefined> {
    const row = guardStorage(() => this.stmts.getResult.get(batchId, index)) as ResultRow | undefined;
    return row ? toResult(row) : undefined;
  }

  async findItemIndex(batchId: string, id: string): Promise<number | undefined> {
    return guardStorage(() => this.findIndex(batchId, id));
  }

  private findIndex(batchId: string, id: string): number | undefined {
    const explicit = this.stmts.findExplicitId.get(batchId, id) as { idx: number } | undefined;
    if (explicit) return explicit.idx;
    if (!DEFAULT_ITEM_ID.test(id)) return undefined;
    const index = Number(id);
    return this.hasItem(batchId, index) && !this.stmts.explicitIdAt.get(batchId, index) ? index : undefined;
  }

  async listEvents(batchId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const rows = guardStorage(() => this.stmts.listEvents.all(batchId, afterSeq, limit)) as EventRow[];
    return rows.map(toEvent);
  }

  async putFailedDelivery(batchId: string, f: FailedDelivery): Promise<void> {
    guardStorage(() =>
      this.stmts.putFailedDelivery.run(batchId, f.messageId, f.eventType, f.attempts, f.lastError, f.failedAt),
    );
  }

  async listFailedDeliveries(batchId: string): Promise<FailedDelivery[]> {
    return (guardStorage(() => this.stmts.listFailedDeliveries.all(batchId)) as FailureRow[]).map(toFailedDelivery);
  }

  async countResults(batchId: string): Promise<Record<StoredResult['status'], number>> {
    return guardStorage(() => this.stmts.countResults.get(batchId)) as Record<StoredResult['status'], number>;
  }

  async countResultsByBlock(batchId: string, blockSize: number): Promise<BlockCounts[]> {
    if (blockSize % COUNTED_BLOCK === 0) {
      return guardStorage(() => this.stmts.countCountedBlocks.all(blockSize / COUNTED_BLOCK, batchId)) as BlockCounts[];
    }
    const rows = guardStorage(() => this.stmts.countResultsByBlock.all(blockSize, batchId)) as {
      block: number;
      status: StoredResult['status'];
      n: number;
    }[];
    return blockCounts(rows);
  }

  /** A batch at a time (one short transaction each), so a sweep never holds the write lock for long. */
  async deleteExpired({
    now,
    retentionMs,
    stagedMs,
  }: {
    now: Date;
    retentionMs: number;
    stagedMs: number;
  }): Promise<Expired> {
    const expired: Expired = { batches: 0, uploads: 0 };
    const sweep = (query: Database.Statement, before: number, kind: keyof Expired) => {
      for (;;) {
        const listed = guardStorage(() => query.all(new Date(before).toISOString())) as { batch_id: string }[];
        const ids = listed.map((r) => r.batch_id);
        if (ids.length === 0) return;
        for (const id of ids) {
          const deleted = this.writeTransaction(() => {
            // An upload may have been committed since it was listed: then it is a batch, and stays.
            if (kind === 'uploads' && this.stmts.isCommitted.get(id)) return false;
            this.stmts.deleteBatch.forEach((s) => s.run(id));
            return true;
          });
          if (deleted) expired[kind]++;
        }
      }
    };
    sweep(this.stmts.endedBefore, now.getTime() - retentionMs, 'batches');
    sweep(this.stmts.stagedBefore, now.getTime() - stagedMs, 'uploads');
    return expired;
  }

  nextWrite(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.writeWaiters.wait(timeoutMs, signal, this.watchWal());
  }

  /** On the store thread (its own connection), so a write that waits on the file never blocks this thread. */
  probe(): Promise<void> {
    this.probing ??= this.thread.probe().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  /** Overwrites the probe's row (the store thread's entry point for probe()). */
  probeNow(): void {
    this.stmts.probe.run(new Date().toISOString());
  }

  /** One IMMEDIATE transaction (see the class comment); a storage fault rejects with StoreUnavailableError. */
  private writeTransaction<T>(work: () => T): T {
    return guardStorage(() => this.db.transaction(work).immediate());
  }

  /**
   * Every commit, by any process, appends to the WAL file (`<file>-wal`, alive while this connection is open), so
   * one inotify watch on it wakes every nextWrite() waiter. Where watching is unsupported, waiters time out. The
   * watch lives only while someone waits (unwatchWal): each page a writer appends is an event for every watching
   * process, so a watch kept after an event stream ended cost this process CPU for every outcome any worker wrote.
   */
  private watchWal(): boolean {
    if (this.walWatcher === undefined) {
      try {
        this.walWatcher = fs.watch(`${this.file}-wal`, { persistent: false }, () => {
          this.writeWaiters.wakeAll();
        });
        this.walWatcher.on('error', () => {
          this.walWatcher?.close();
          this.walWatcher = null;
        });
      } catch {
        this.walWatcher = null;
      }
    }
    return this.walWatcher !== null;
  }

  /** Stops watching the write-ahead log (the last nextWrite() waiter left); the next wait watches it again. */
  private unwatchWal(): void {
    if (!this.walWatcher) return; // none, or watching is impossible here (null stays)
    this.walWatcher.close();
    this.walWatcher = undefined;
  }

  /** Resolves once the store thread's connection is closed too: then nothing holds the file open. */
  async close(): Promise<void> {
    const threadClosed = this.thread.close();
    this.walWatcher?.close();
    this.walWatcher = null;
    this.writeWaiters.wakeAll();
    if (this.db.open) this.db.close();
    await threadClosed;
  }
}

/** Thrown inside an append's transaction to roll back an append whose ids clash (named after the rollback). */
class IdClash extends Error {}
