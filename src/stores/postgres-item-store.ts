import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg, { escapeLiteral } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { BatchEnd } from '../contracts/batch.js';
import type { FailedDelivery } from '../contracts/webhook.js';
import {
  DEFAULT_ITEM_ID,
  DuplicateItemIdError,
  type BlockCounts,
  COUNTED_BLOCK,
  type Expired,
  type ItemStore,
  itemBlocks,
  itemRow,
  MAX_ITEMS_PER_BLOCK,
  itemsPerBlock,
  type ItemRow,
  type NewItem,
  type ResultPage,
  type StoredBatch,
  type StoredEvent,
  type StoredItem,
  type StoredResult,
} from './item-store.js';
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
import { connectError, createPool, KEEPALIVE_DELAY_MS, parseDatabaseUrl, type DatabaseUrl } from './postgres.js';
import { isConnectionFailure, toStoreUnavailable } from './store-unavailable.js';

export interface PostgresItemStoreOptions {
  /** Most connections this store opens, besides its one listening connection (default 10). */
  poolSize?: number;
}

/** The channel every write that a tail may wait for is announced on (the payload is the batch id). */
const CHANNEL = 'batchline_writes';
/**
 * The advisory lock that serializes migrations between processes starting at once. The two-int form lives in a key
 * space of its own, apart from the one-bigint locks taken per batch below.
 */
const MIGRATION_LOCK = [0x62746368, 1] as const;
/** Items per COPY of an upload or a batch created whole: bounded statements, few round trips. */
const INSERT_SLICE = 5_000;
/** Items per DELETE when removing an expired batch or a stale upload: no single huge transaction. */
const DELETE_SLICE = 10_000;
/** Events numbered per listEvents call at most (more than a page): bounds the numbering transaction. */
const NUMBER_SLICE = 10_000;
const MAX_INT4 = 2 ** 31 - 1;
/** Results written in one statement at most (putResult calls that arrive while a write of their batch is out). */
const RESULT_SLICE = 1_000;
/** Reconnecting the listening connection: first delay, doubled up to the last. */
const LISTEN_RETRY_MS = [100, 5_000] as const;

/**
 * The index an id reads as, if it is an index in its canonical spelling (DEFAULT_ITEM_ID) within INTEGER, the type
 * of an index here; null for any other id (one beyond INTEGER names no item).
 */
function idAsIndex(id: string): number | null {
  return DEFAULT_ITEM_ID.test(id) && Number(id) <= MAX_INT4 ? Number(id) : null;
}

/**
 * The item store on PostgreSQL (DATABASE_URL): the same contract and the same SQL semantics as SqliteItemStore, for
 * any number of API and worker processes on any hosts. JSON stays in TEXT columns, as in SQLite, so both backends
 * round-trip values identically. A write that a tail waits for is announced with NOTIFY; one dedicated connection
 * per store LISTENs and wakes nextWrite(). Storage and connection failures reject with StoreUnavailableError.
 */
export class PostgresItemStore implements ItemStore {
  readonly backend = 'postgres';
  readonly appendSize = INSERT_SLICE;
  /** The tail of each staged batch's appends (and the commit or delete after them): they run in call order. */
  private readonly staging = new Map<string, Promise<void>>();
  private readonly writeWaiters = new WriteWaiters();
  /** Per batch, putResult calls waiting for the write in flight to finish: they go together in the next one. */
  private readonly resultQueues = new Map<string, PendingResult[]>();
  /** Batches with an announcement in flight, and whether another write came in since it was sent. */
  private readonly announcing = new Map<string, boolean>();
  private listener: pg.Client | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectDelay: number = LISTEN_RETRY_MS[0];
  private closed = false;
  /** The probe in flight, which callers meanwhile share. */
  private probing: Promise<void> | undefined;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly where: DatabaseUrl,
  ) {}

  /**
   * Connects, applies pending migrations and starts listening for writes. Fails fast with an Error naming
   * DATABASE_URL when the URL is malformed, the server is unreachable or refuses the credentials, and with
   * SchemaTooNewError when a newer batchline has migrated the database.
   */
  static async open(url: string, options: PostgresItemStoreOptions = {}): Promise<PostgresItemStore> {
    const where = parseDatabaseUrl(url);
    const poolSize = options.poolSize ?? 10;
    const store = new PostgresItemStore(createPool(url, { max: poolSize }), where);
    try {
      await store.migrate();
      await store.listen();
      // Every connection opened now, not by the first items: authenticating one takes milliseconds of CPU on both
      // sides, and a batch's first items would otherwise all wait for their connections together.
      const opened = await Promise.allSettled(Array.from({ length: poolSize }, () => store.pool.connect()));
      for (const o of opened) if (o.status === 'fulfilled') o.value.release(); // before close(): pool.end() waits
      const failed = opened.find((o) => o.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      await store.close();
      throw connectError(err, where);
    }
    return store;
  }

  private async migrate(): Promise<void> {
    await this.transaction(async (client) => {
      // Several processes may start at once against an empty database: one migrates, the others wait here and
      // then find nothing pending.
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...MIGRATION_LOCK]);
      await client.query(MIGRATIONS_TABLE_DDL);
      const { rows } = await client.query<{ found: number }>(
        'SELECT COALESCE(MAX(version), 0)::int AS found FROM schema_migrations',
      );
      for (const m of pendingMigrations(rows[0]!.found, this.where.redacted)) {
        await client.query(m.postgres);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          new Date().toISOString(),
        ]);
      }
    });
  }

  async createBatch(batch: StoredBatch, items: Iterable<NewItem>): Promise<void> {
    await this.guard(
      this.transaction(async (client) => {
        // A new batch has no items yet: a repeated id can only repeat an earlier item of this call.
        const seen = new Set<string>();
        const perBlock = itemsPerBlock(batch.options);
        let slice = new ItemSlice(batch.id, 0, perBlock);
        for (const item of items) {
          const index = slice.from + slice.length;
          const id = item.id ?? String(index);
          if (seen.has(id)) throw new DuplicateItemIdError(id, index);
          seen.add(id);
          slice.push(itemRow(item));
          if (slice.length === INSERT_SLICE) {
            await slice.insert(client);
            slice = new ItemSlice(batch.id, index + 1, perBlock);
          }
        }
        await slice.insert(client);
        await this.commitIn(client, batch);
      }),
    );
  }

  appendRows(batchId: string, from: number, rows: ItemRow[], perBlock = 1): Promise<void> {
    // Put in COPY's form now, so that it overlaps the batch's earlier append, which is still being written.
    const slice = new ItemSlice(batchId, from, perBlock);
    for (const row of rows) slice.push(row);
    slice.seal();
    return this.inBatchOrder(batchId, () => this.guard(this.append(batchId, from, slice)));
  }

  private async append(batchId: string, from: number, slice: ItemSlice): Promise<void> {
    try {
      await this.transaction(async (client) => {
        // Staged items need not be on disk when the append returns: commitBatch's own (synchronous) commit flushes
        // the write-ahead log up to it, staged appends included, before the batch exists; a crash before that
        // loses only an upload that was never acknowledged. So appends skip the wait for their WAL flush.
        await client.query('SET LOCAL synchronous_commit = off');
        // The batch's staging lock: a commit counts the items only once no append of the batch is in flight.
        await client.query(
          `INSERT INTO uploads (batch_id, started_at)
           SELECT $1, $2 FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 1))) AS locked
           ON CONFLICT (batch_id) DO UPDATE SET started_at = excluded.started_at`,
          [batchId, new Date().toISOString()],
        );
        await slice.insert(client);
        // A given id such as '7' clashes with item 7's default id, in either order: the unique index cannot see
        // that. This append's items are in the tables now, so the checks cover them as well as earlier appends:
        // a given id that reads as the index of a stored item without a given id, or a given id of the batch that
        // is the index of an item of this append without one (looked up only if the batch has any given id).
        const numericIds = slice.ids.map(idAsIndex).filter((idx) => idx !== null);
        const defaultIds = slice.indexes.filter((_, i) => slice.ids[i] === '').map(String);
        if (numericIds.length === 0 && defaultIds.length === 0) return;
        const { rows } = await client.query<{ clash: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM unnest($2::int[]) AS j(idx)
                          WHERE ${storedWithoutId('$1', 'j.idx')})
               OR (EXISTS (SELECT 1 FROM item_ids WHERE batch_id = $1)
                   AND EXISTS (SELECT 1 FROM item_ids WHERE batch_id = $1 AND client_id = ANY($3::text[])))
             AS clash`,
          [batchId, numericIds, defaultIds],
        );
        if (rows[0]!.clash) throw new IdClash();
      });
    } catch (err) {
      if (!(err instanceof IdClash) && (err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
      // Rolled back: name the first item whose id an earlier item of this append, or of the batch, already has.
      const ids = slice.ids.map((given, i) => given || String(from + i));
      const existing = await this.existingIds(batchId, ids);
      const seen = new Set<string>();
      for (const [i, id] of ids.entries()) {
        if (seen.has(id) || existing.has(id)) throw new DuplicateItemIdError(id, from + i);
        seen.add(id);
      }
      throw err;
    }
  }

  /** Which of these ids items of the batch have, as given ids or as default ids (findItemIndex, in bulk). */
  private async existingIds(batchId: string, ids: string[]): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT u.id FROM unnest($2::text[], $3::int[]) AS u(id, idx)
       WHERE EXISTS (SELECT 1 FROM item_ids i WHERE i.batch_id = $1 AND i.client_id = u.id)
          OR (u.idx IS NOT NULL AND ${storedWithoutId('$1', 'u.idx')})`,
      [batchId, ids, ids.map(idAsIndex)],
    );
    return new Set(rows.map((r) => r.id));
  }

  commitBatch(batch: StoredBatch): Promise<void> {
    return this.inBatchOrder(batch.id, () =>
      this.guard(
        this.transaction(async (client) => {
          await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 1))', [batch.id]);
          await this.commitIn(client, batch);
          await client.query('DELETE FROM uploads WHERE batch_id = $1', [batch.id]);
        }),
      ),
    );
  }

  /** Counts the batch's items and inserts its row, in the caller's transaction. */
  private async commitIn(client: pg.PoolClient, batch: StoredBatch): Promise<void> {
    const { rows } = await client.query<{ n: number }>(
      'SELECT COALESCE(SUM(n), 0)::int AS n FROM item_blocks WHERE batch_id = $1',
      [batch.id],
    );
    const n = rows[0]!.n;
    if (n !== batch.total) throw new Error(`batch ${batch.id}: ${n} items stored, ${batch.total} declared`);
    await client.query(
      `INSERT INTO batches (id, model, version, total, options, metadata, created_at, tenant, webhook)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        batch.id,
        batch.model,
        batch.version ?? null,
        batch.total,
        JSON.stringify(batch.options),
        batch.metadata ? JSON.stringify(batch.metadata) : null,
        batch.createdAt,
        batch.tenant,
        batch.webhook ? JSON.stringify(batch.webhook) : null,
      ],
    );
  }

  async getBatch(batchId: string): Promise<StoredBatch | undefined> {
    const { rows } = await this.guard(this.pool.query<BatchRow>('SELECT * FROM batches WHERE id = $1', [batchId]));
    const row = rows[0];
    return row ? toBatch(row) : undefined;
  }

  deleteBatch(batchId: string): Promise<void> {
    // After the batch's pending appends: one still in flight would otherwise store its items after the delete.
    return this.inBatchOrder(batchId, () =>
      this.guard(
        this.transaction(async (client) => {
          // The numbering lock first: a listEvents numbering this batch's events meanwhile would otherwise lock
          // the same rows in another order (a deadlock that PostgreSQL resolves by failing one of the two).
          await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [batchId]);
          for (const table of BATCH_TABLES) await client.query(`DELETE FROM ${table} WHERE batch_id = $1`, [batchId]);
          await client.query('DELETE FROM batches WHERE id = $1', [batchId]);
        }),
      ),
    );
  }

  async getItems(batchId: string, from: number, count: number): Promise<StoredItem[]> {
    const to = from + count;
    // One round trip (a job queue reads its items one at a time): the blocks that may hold the range, the last one
    // that starts at or before `from` and those that start inside it, each with the ids given to its items in range.
    const { rows } = await this.guard(
      this.pool.query<BlockRow & { idxs: number[] | null; ids: string[] | null }>({
        // Prepared once per connection: planning this query took longer than running it for one item.
        name: 'batchline-get-items',
        text: `SELECT b.first, b.n, b.inputs, g.idxs, g.ids
         FROM (
           SELECT first, n, inputs FROM item_blocks WHERE batch_id = $1
             AND first = (SELECT MAX(first) FROM item_blocks WHERE batch_id = $1 AND first <= $2::bigint)
           UNION ALL
           SELECT first, n, inputs FROM item_blocks WHERE batch_id = $1 AND first > $2::bigint AND first < $3::bigint
         ) AS b
         LEFT JOIN LATERAL (
           SELECT array_agg(idx) AS idxs, array_agg(client_id) AS ids FROM item_ids
           WHERE batch_id = $1 AND idx >= GREATEST(b.first, $2::bigint) AND idx < LEAST(b.first + b.n, $3::bigint)
         ) AS g ON true
         ORDER BY b.first`,
        values: [batchId, from, to],
      }),
    );
    const ids = rows.flatMap((r) => (r.idxs ?? []).map((idx, k) => ({ idx, client_id: r.ids![k]! })));
    return toItems(batchId, rows, ids, from, to);
  }

  /**
   * Writes go out one statement at a time per batch: the first at once, and those that arrive while it is out
   * together in the next. A commit waits for its WAL flush, so one statement per result would bound a batch to
   * one result per flush; grouped, concurrent activities share flushes (group commit, done here).
   */
  putResult(batchId: string, result: Omit<StoredResult, 'id'>): Promise<boolean> {
    return new Promise((resolve, reject) => this.enqueueResults(batchId, [{ result, resolve, reject }]));
  }

  /** Queued together, so they go in one statement (RESULT_SLICE at most), with what else waits for the batch. */
  async putResults(batchId: string, results: Omit<StoredResult, 'id'>[]): Promise<boolean[]> {
    const pending: PendingResult[] = [];
    const written = results.map(
      (result) => new Promise<boolean>((resolve, reject) => pending.push({ result, resolve, reject })),
    );
    this.enqueueResults(batchId, pending);
    return Promise.all(written);
  }

  private enqueueResults(batchId: string, pending: PendingResult[]): void {
    if (pending.length === 0) return;
    const queue = this.resultQueues.get(batchId);
    if (queue) queue.push(...pending);
    else {
      this.resultQueues.set(batchId, pending);
      void this.writeResults(batchId, pending);
    }
  }

  /** Drains a batch's queue, one statement at a time, until no call is waiting. */
  private async writeResults(batchId: string, queue: PendingResult[]): Promise<void> {
    try {
      while (queue.length > 0) {
        // One outcome per item per statement (an upsert may not touch a row twice); a repeat waits for the next.
        const take: PendingResult[] = [];
        const later: PendingResult[] = [];
        const indexes = new Set<number>();
        for (const p of queue) {
          if (take.length < RESULT_SLICE && !indexes.has(p.result.index)) {
            indexes.add(p.result.index);
            take.push(p);
          } else later.push(p);
        }
        queue.length = 0;
        for (const p of later) queue.push(p);
        try {
          const written = await this.writeResultRows(
            batchId,
            take.map((p) => p.result),
          );
          for (const p of take) p.resolve(written.has(p.result.index));
          if (written.size > 0) this.announce(batchId);
        } catch (err) {
          const error = toStoreUnavailable(err);
          for (const p of take) p.reject(error);
        }
      }
    } finally {
      this.resultQueues.delete(batchId);
    }
  }

  /**
   * One transaction: the results, then the events of those written, numbered. A success is final; a failure may be
   * replaced by a later outcome (a retried dead-letter item). Rows go in index order, so two processes writing the
   * same items lock them in the same order (no deadlock); the second waits for the first's rows and then sees the
   * successes it may not replace. The events get their seqs here, under the batch's advisory lock taken in a
   * statement of its own after the results are written (numberEvents says why that is safe): numbering them after
   * the commit rewrote every event row once more, as costly as writing it (BENCHMARKS.md). The lock is held only
   * for the events' insert and the commit, so a batch's writers wait on each other for no more than that.
   * Resolves with the indexes written.
   */
  private async writeResultRows(batchId: string, results: Omit<StoredResult, 'id'>[]): Promise<Set<number>> {
    const column = <T>(f: (r: Omit<StoredResult, 'id'>) => T) => results.map(f);
    return this.transaction(async (client) => {
      const { rows } = await client.query<{
        idx: number;
        status: string;
        attempts: number;
        error: string | null;
        finished_at: string;
      }>({
        // Prepared once per connection, as the next statement: a run's write is planned once, not each time.
        name: 'batchline-put-results',
        text: `WITH input AS (
           SELECT * FROM unnest($2::int[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[])
             AS t(idx, status, attempts, result, error, started_at, finished_at)
         ), written AS (
           INSERT INTO results (batch_id, idx, status, attempts, result, error, started_at, finished_at)
           SELECT $1, idx, status, attempts, result, error, started_at, finished_at FROM input ORDER BY idx
           ON CONFLICT (batch_id, idx) DO UPDATE SET
             status = excluded.status, attempts = excluded.attempts, result = excluded.result, error = excluded.error,
             started_at = excluded.started_at, finished_at = excluded.finished_at
           WHERE results.status <> 'succeeded'
             AND NOT (results.status = 'failed' AND excluded.status = 'failed' AND results.attempts = excluded.attempts
                      AND results.error IS NOT DISTINCT FROM excluded.error)
           RETURNING idx, status, attempts, error, finished_at, xmax = 0 AS inserted
         ), counted AS (
           -- An update replaces a failure (the WHERE above): it moves one count from failed to its new status.
           -- xmax = 0 tells a row inserted from one updated. One upsert per block, in block order, like the rows above.
           INSERT INTO result_blocks (batch_id, block, succeeded, failed)
           SELECT $1, idx / ${COUNTED_BLOCK}, COUNT(*) FILTER (WHERE status = 'succeeded'),
                  COUNT(*) FILTER (WHERE status = 'failed') - COUNT(*) FILTER (WHERE NOT inserted)
           FROM written GROUP BY idx / ${COUNTED_BLOCK} ORDER BY idx / ${COUNTED_BLOCK}
           ON CONFLICT (batch_id, block) DO UPDATE SET
             succeeded = result_blocks.succeeded + excluded.succeeded, failed = result_blocks.failed + excluded.failed
         )
         SELECT idx, status, attempts, error, finished_at FROM written ORDER BY idx`,
        values: [
          batchId,
          column((r) => r.index),
          column((r) => r.status),
          column((r) => r.attempts),
          column((r) => (r.result ? JSON.stringify(r.result) : null)),
          column((r) => (r.error ? JSON.stringify(r.error) : null)),
          column((r) => r.startedAt),
          column((r) => r.finishedAt),
        ],
      });
      if (rows.length === 0) return new Set<number>();
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [batchId]);
      // A statement of its own after the lock: its snapshot holds every seq committed before, so MAX is current.
      await client.query({
        name: 'batchline-append-events',
        text: `INSERT INTO events (batch_id, seq, idx, status, attempts, error, finished_at)
         SELECT $1, (SELECT COALESCE(MAX(seq), 0) FROM events WHERE batch_id = $1) + n, idx, status, attempts, error,
                finished_at
         FROM unnest($2::int[], $3::text[], $4::int[], $5::text[], $6::text[]) WITH ORDINALITY
           AS t(idx, status, attempts, error, finished_at, n)`,
        values: [
          batchId,
          rows.map((r) => r.idx),
          rows.map((r) => r.status),
          rows.map((r) => r.attempts),
          rows.map((r) => r.error),
          rows.map((r) => r.finished_at),
        ],
      });
      return new Set(rows.map((r) => r.idx));
    });
  }

  /**
   * Tells every listener that the batch has new events, after the write committed. Not inside the write's
   * transaction: a transaction that notifies holds a database-wide lock from before its commit record is flushed
   * until it is done, so concurrent writers that notify commit one at a time instead of sharing flushes. Writes of
   * one batch made while an announcement is in flight share the next one. A lost announcement (a failure, a crash
   * after the commit) only delays waiters to their timeout.
   */
  private announce(batchId: string): void {
    if (this.closed) return;
    if (this.announcing.has(batchId)) {
      this.announcing.set(batchId, true);
      return;
    }
    this.announcing.set(batchId, false);
    // Numbered here, before waking the tails, so that they find their events numbered and read them at once. On
    // the listening connection when it is up: it is otherwise idle, while the pool's connections may all be busy
    // with item reads and writes, and an announcement queued behind them would delay every tail. One query
    // string, so it never interleaves with another announcement's on the same connection.
    void (this.listener ?? this.pool)
      .query(
        `${numberingSql(batchId, NUMBER_SLICE)}; SELECT pg_notify(${escapeLiteral(CHANNEL)}, ${escapeLiteral(batchId)})`,
      )
      .catch(() => undefined)
      .then(() => {
        const again = this.announcing.get(batchId);
        this.announcing.delete(batchId);
        if (again) this.announce(batchId);
      });
  }

  async endBatch(batchId: string, end: BatchEnd): Promise<boolean> {
    const now = new Date().toISOString();
    // Outcomes recorded before this call committed before it, with lower event ids: numbering puts them first.
    const { rowCount } = await this.guard(
      this.pool.query(
        `WITH ended AS (
           INSERT INTO events (batch_id, kind, idx, status, attempts, summary, finished_at)
           VALUES ($1, 'end', -1, $2, 0, $3, $4)
           ON CONFLICT DO NOTHING
           RETURNING 1
         ), marked AS (
           UPDATE batches SET ended_at = $4 WHERE id = $1 AND EXISTS (SELECT 1 FROM ended) RETURNING 1
         )
         SELECT pg_notify('${CHANNEL}', $1) FROM ended`,
        [batchId, end.status, JSON.stringify(end.summary), now],
      ),
    );
    return rowCount === 1;
  }

  async getEnd(batchId: string): Promise<BatchEnd | undefined> {
    const { rows } = await this.guard(
      this.pool.query<{ status: BatchEnd['status']; summary: string }>(
        "SELECT status, summary FROM events WHERE batch_id = $1 AND kind = 'end'",
        [batchId],
      ),
    );
    const row = rows[0];
    return row ? { status: row.status, summary: JSON.parse(row.summary) } : undefined;
  }

  async listResults(
    batchId: string,
    options: { cursor?: number; end?: number; limit?: number; status?: StoredResult['status'] } = {},
  ): Promise<ResultPage> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 10_000);
    const cursor = Math.max(options.cursor ?? 0, 0);
    const { rows } = await this.guard(
      this.pool.query<ResultRow>(
        `SELECT r.*, COALESCE(i.client_id, '') AS client_id FROM results r
         LEFT JOIN item_ids i ON i.batch_id = r.batch_id AND i.idx = r.idx
         WHERE r.batch_id = $1 AND r.idx >= $2::bigint AND ($5::bigint IS NULL OR r.idx < $5)
           AND ($3::text IS NULL OR r.status = $3) ORDER BY r.idx LIMIT $4`,
        [batchId, cursor, options.status ?? null, limit + 1, options.end ?? null],
      ),
    );
    const more = rows.length > limit;
    const page = rows.slice(0, limit).map(toResult);
    return more ? { results: page, nextCursor: page[page.length - 1]!.index + 1 } : { results: page };
  }

  async getResult(batchId: string, index: number): Promise<StoredResult | undefined> {
    const { rows } = await this.guard(
      this.pool.query<ResultRow>(
        `SELECT r.*, COALESCE(i.client_id, '') AS client_id FROM results r
         LEFT JOIN item_ids i ON i.batch_id = r.batch_id AND i.idx = r.idx
         WHERE r.batch_id = $1 AND r.idx = $2::bigint`,
        [batchId, index],
      ),
    );
    return rows[0] ? toResult(rows[0]) : undefined;
  }

  async findItemIndex(batchId: string, itemId: string): Promise<number | undefined> {
    const { rows } = await this.guard(
      this.pool.query<{ idx: number }>(
        `(SELECT idx FROM item_ids WHERE batch_id = $1 AND client_id = $2)
         UNION ALL
         (SELECT $3::int AS idx WHERE $3::int IS NOT NULL AND ${storedWithoutId('$1', '$3::int')})
         LIMIT 1`,
        [batchId, itemId, idAsIndex(itemId)],
      ),
    );
    return rows[0]?.idx;
  }

  async listEvents(batchId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    await this.guard(this.numberEvents(batchId, Math.max(limit, NUMBER_SLICE)));
    const { rows } = await this.guard(
      this.pool.query<EventRow>(
        `SELECT e.seq, e.kind, e.idx, e.status, e.attempts, e.error, e.summary, e.finished_at, i.client_id, r.result
         FROM events e
         LEFT JOIN item_ids i ON e.kind = 'item' AND i.batch_id = e.batch_id AND i.idx = e.idx
         LEFT JOIN results r ON e.kind = 'item' AND e.status = 'succeeded' AND r.batch_id = e.batch_id AND r.idx = e.idx
         WHERE e.batch_id = $1 AND e.seq > $2::bigint
         ORDER BY e.seq LIMIT $3`,
        [batchId, afterSeq, limit],
      ),
    );
    return rows.map(toEvent);
  }

  /**
   * Gives the batch's committed, unnumbered events their seqs: the max seq so far plus 1, 2, ... in insertion (id)
   * order. Outcome writers number their own events the same way, inside their transaction (writeResultRows); the
   * batch's end event, and events written by batchline before that, are inserted with seq NULL and numbered here.
   * Ids alone would not do as seqs, because a writer that took id n may commit after one that took n + 1, and a
   * reader between the two commits would skip n forever. Numbering is safe because:
   * - the UPDATE sees only committed rows, so an event still being written is numbered by a later pass, after
   *   every seq given before it;
   * - passes of one batch are serialized by the batch's advisory lock, taken in a statement of its own before the
   *   UPDATE: under READ COMMITTED the UPDATE's snapshot is taken after the lock is granted, so it sees the
   *   previous pass's seqs, and the max it starts from is current;
   * - a pass commits all its seqs at once, and they continue the previous pass's without a gap.
   * So the numbered events of a batch are always seqs 1..n, and a reader never sees seq n + 1 before n. A writer's
   * announcement numbers the batch's events before it wakes the tails, so a reader mostly finds nothing to do.
   */
  private async numberEvents(batchId: string, most: number): Promise<void> {
    const { rows } = await this.pool.query<{ pending: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM events WHERE batch_id = $1 AND seq IS NULL) AS pending',
      [batchId],
    );
    if (rows[0]!.pending) await this.pool.query(numberingSql(batchId, most));
  }

  nextWrite(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    // Closed: resolves at once, as nothing will write through this store again.
    return this.closed ? Promise.resolve() : this.writeWaiters.wait(timeoutMs, signal, true);
  }

  private wakeWaiters(): void {
    this.writeWaiters.wakeAll();
  }

  /** Opens the listening connection; on loss it is opened again in the background, with backoff. */
  private async listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.where.url,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
      connectionTimeoutMillis: 5_000,
    });
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = null;
      void client.end().catch(() => undefined);
      this.scheduleListen();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', () => this.wakeWaiters());
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      void client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    this.reconnectDelay = LISTEN_RETRY_MS[0];
  }

  private scheduleListen(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(delay * 2, LISTEN_RETRY_MS[1]);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.listen().then(
        // Writes made while no one listened were not announced: waiters read again now rather than at timeout.
        () => this.wakeWaiters(),
        () => this.scheduleListen(),
      );
    }, delay);
    this.reconnectTimer.unref();
  }

  async putFailedDelivery(batchId: string, f: FailedDelivery): Promise<void> {
    await this.guard(
      this.pool.query(
        `INSERT INTO webhook_failures (batch_id, message_id, event_type, attempts, last_error, failed_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
        [batchId, f.messageId, f.eventType, f.attempts, f.lastError, f.failedAt],
      ),
    );
  }

  async listFailedDeliveries(batchId: string): Promise<FailedDelivery[]> {
    // Byte order, as SQLite compares text: the same list in the same order on both backends.
    const { rows } = await this.guard(
      this.pool.query<FailureRow>(
        `SELECT * FROM webhook_failures WHERE batch_id = $1 ORDER BY failed_at COLLATE "C", message_id COLLATE "C"`,
        [batchId],
      ),
    );
    return rows.map(toFailedDelivery);
  }

  async countResults(batchId: string): Promise<Record<StoredResult['status'], number>> {
    const { rows } = await this.guard(
      this.pool.query<Record<StoredResult['status'], number>>(
        `SELECT COALESCE(SUM(succeeded), 0)::int AS succeeded, COALESCE(SUM(failed), 0)::int AS failed
         FROM result_blocks WHERE batch_id = $1`,
        [batchId],
      ),
    );
    return rows[0]!;
  }

  async countResultsByBlock(batchId: string, blockSize: number): Promise<BlockCounts[]> {
    if (blockSize % COUNTED_BLOCK === 0) {
      const { rows } = await this.guard(
        this.pool.query<BlockCounts>(
          `SELECT block / $2 AS block, SUM(succeeded)::int AS succeeded, SUM(failed)::int AS failed
           FROM result_blocks WHERE batch_id = $1 GROUP BY 1 HAVING SUM(succeeded) + SUM(failed) > 0 ORDER BY 1`,
          [batchId, blockSize / COUNTED_BLOCK],
        ),
      );
      return rows;
    }
    const { rows } = await this.guard(
      this.pool.query<{ block: number; status: StoredResult['status']; n: number }>(
        `SELECT idx / $2 AS block, status, COUNT(*)::int AS n FROM results WHERE batch_id = $1
         GROUP BY block, status ORDER BY block`,
        [batchId, blockSize],
      ),
    );
    return blockCounts(rows);
  }

  async deleteExpired(options: { now: Date; retentionMs: number; stagedMs: number }): Promise<Expired> {
    const ended = new Date(options.now.getTime() - options.retentionMs).toISOString();
    const staged = new Date(options.now.getTime() - options.stagedMs).toISOString();
    const removed = { batches: 0, uploads: 0 };
    await this.guard(
      (async () => {
        for (let ids = await this.expiredBatches(ended); ids.length > 0; ids = await this.expiredBatches(ended)) {
          for (const id of ids) removed.batches += await this.purgeBatch(id);
        }
        for (let ids = await this.staleUploads(staged); ids.length > 0; ids = await this.staleUploads(staged)) {
          for (const id of ids) removed.uploads += await this.purgeUpload(id);
        }
      })(),
    );
    return removed;
  }

  private async expiredBatches(before: string): Promise<string[]> {
    // ISO-8601 instants of one format compare in time order as text, in any collation.
    const { rows } = await this.pool.query<{ id: string }>(
      'SELECT id FROM batches WHERE ended_at IS NOT NULL AND ended_at < $1 ORDER BY ended_at LIMIT 100',
      [before],
    );
    return rows.map((r) => r.id);
  }

  private async staleUploads(before: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ batch_id: string }>(
      `SELECT batch_id FROM uploads u
       WHERE started_at < $1 AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = u.batch_id)
       ORDER BY started_at LIMIT 100`,
      [before],
    );
    return rows.map((r) => r.batch_id);
  }

  /**
   * Removes an expired batch a slice at a time, its row last: a purge cut short leaves the batch listed as expired,
   * and the next run finishes it. Resolves 1 when this call removed the row.
   */
  private async purgeBatch(batchId: string): Promise<number> {
    // Events first, the client ids last: an event read meanwhile still finds its item's id.
    await this.deleteInSlices('events', 'id', batchId, 0);
    await this.deleteInSlices('results', 'idx', batchId);
    await this.deleteInSlices('item_blocks', 'first', batchId);
    await this.deleteInSlices('item_ids', 'idx', batchId);
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [batchId]);
      for (const table of BATCH_TABLES) await client.query(`DELETE FROM ${table} WHERE batch_id = $1`, [batchId]);
      return (await client.query('DELETE FROM batches WHERE id = $1', [batchId])).rowCount ?? 0;
    });
  }

  /** Removes a stale upload's items a slice at a time, then its row, unless its batch was committed meanwhile. */
  private async purgeUpload(batchId: string): Promise<number> {
    await this.deleteInSlices('item_blocks', 'first', batchId, 1, true);
    await this.deleteInSlices('item_ids', 'idx', batchId, 1, true);
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 1))', [batchId]);
      const { rows } = await client.query('SELECT 1 FROM batches WHERE id = $1', [batchId]);
      if (rows.length > 0) return 0;
      await client.query('DELETE FROM item_blocks WHERE batch_id = $1', [batchId]);
      await client.query('DELETE FROM item_ids WHERE batch_id = $1', [batchId]);
      return (await client.query('DELETE FROM uploads WHERE batch_id = $1', [batchId])).rowCount ?? 0;
    });
  }

  /**
   * Deletes a batch's rows of one table in slices of DELETE_SLICE items (of item_blocks, as many blocks as could hold
   * them), each its own transaction. `lock`: the batch's advisory lock to hold per slice (0: numbering, 1: staging);
   * `uncommitted`: stop if the batch is committed.
   */
  private async deleteInSlices(
    table: 'results' | 'item_blocks' | 'item_ids' | 'events',
    key: 'idx' | 'first' | 'id',
    batchId: string,
    lock?: 0 | 1,
    uncommitted = false,
  ): Promise<void> {
    const rows = table === 'item_blocks' ? Math.ceil(DELETE_SLICE / MAX_ITEMS_PER_BLOCK) : DELETE_SLICE;
    for (;;) {
      const deleted = await this.transaction(async (client) => {
        if (lock !== undefined) {
          await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, $2))', [batchId, lock]);
        }
        if (uncommitted && (await client.query('SELECT 1 FROM batches WHERE id = $1', [batchId])).rows.length > 0) {
          return 0;
        }
        const { rowCount } = await client.query(
          `DELETE FROM ${table} WHERE batch_id = $1
             AND ${key} IN (SELECT ${key} FROM ${table} WHERE batch_id = $1 LIMIT $2)`,
          [batchId, rows],
        );
        return rowCount ?? 0;
      });
      if (deleted < rows) return;
    }
  }

  probe(): Promise<void> {
    this.probing ??= this.guard(this.pool.query(probeQuery(new Date().toISOString())).then(() => undefined)).finally(
      () => {
        this.probing = undefined;
      },
    );
    return this.probing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const listener = this.listener;
    this.listener = null;
    this.wakeWaiters();
    await Promise.all([listener?.end().catch(() => undefined), this.pool.end().catch(() => undefined)]);
  }

  /** Runs `work` after the batch's earlier appends, commit or delete have settled (whatever their outcome). */
  private inBatchOrder(batchId: string, work: () => Promise<void>): Promise<void> {
    const run = (this.staging.get(batchId) ?? Promise.resolve()).then(work);
    const tail = run.catch(() => undefined);
    this.staging.set(batchId, tail);
    void tail.then(() => {
      if (this.staging.get(batchId) === tail) this.staging.delete(batchId);
    });
    return run;
  }

  /** One transaction on one pooled connection; a connection that failed is dropped, not reused. */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A checked-out connection that breaks between two queries emits 'error' with nobody listening (the pool
    // listens only while it is idle): that would crash the process. The failure surfaces on the next query.
    const ignore = () => undefined;
    client.on('error', ignore);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const out = await work(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      if (isConnectionFailure(err)) broken = err as Error;
      else {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
      }
      throw err;
    } finally {
      client.removeListener('error', ignore);
      client.release(broken);
    }
  }

  /** Maps failures of the database's storage or connections to StoreUnavailableError (store-unavailable.ts). */
  private async guard<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      throw toStoreUnavailable(err);
    }
  }
}

const UNIQUE_VIOLATION = '23505';

/** The tables that hold a batch's rows (besides `batches`), by `batch_id`. */
const BATCH_TABLES = ['events', 'webhook_failures', 'results', 'result_blocks', 'item_blocks', 'item_ids', 'uploads'];

/**
 * SQL that holds when batch `batch` has item `idx` (a block covers it: the last block starting at or before it) and
 * its client gave it no id, so its id is its index. Both are SQL expressions (parameters, columns).
 */
function storedWithoutId(batch: string, idx: string): string {
  return `NOT EXISTS (SELECT 1 FROM item_ids WHERE batch_id = ${batch} AND idx = ${idx})
    AND (SELECT first + n FROM item_blocks WHERE batch_id = ${batch} AND first <= ${idx}
         ORDER BY first DESC LIMIT 1) > ${idx}`;
}

/** How long the probe's statement may go unanswered: a hung connection is then dropped, not kept by the probe. */
const PROBE_QUERY_TIMEOUT_MS = 10_000;

/** The probe's upsert, with the driver's client-side read timeout (a field its types lack). */
function probeQuery(at: string): pg.QueryConfig & { query_timeout: number } {
  return {
    text: 'INSERT INTO store_probe (id, probed_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at',
    values: [at],
    query_timeout: PROBE_QUERY_TIMEOUT_MS,
  };
}

/**
 * One round trip that gives the batch's committed, unnumbered events their seqs (numberEvents says why this is
 * safe): the batch's advisory lock in a statement of its own, then the UPDATE. Several statements in one simple
 * query run as one transaction (rolled back whole on an error, so no connection is left inside a failed one),
 * each statement with its own snapshot. Parameters cannot go into such a query: the batch id goes in escaped.
 */
function numberingSql(batchId: string, most: number): string {
  const id = escapeLiteral(batchId);
  return `SELECT pg_advisory_xact_lock(hashtextextended(${id}, 0));
    UPDATE events e SET seq = n.seq
    FROM (
      SELECT id, (SELECT COALESCE(MAX(seq), 0) FROM events WHERE batch_id = ${id}) + row_number() OVER (ORDER BY id) AS seq
      FROM (SELECT id FROM events WHERE batch_id = ${id} AND seq IS NULL ORDER BY id LIMIT ${Math.trunc(most)}) AS unnumbered
    ) AS n
    WHERE e.id = n.id`;
}

/** A putResult call waiting for its batch's next write. */
interface PendingResult {
  result: Omit<StoredResult, 'id'>;
  resolve(written: boolean): void;
  reject(err: unknown): void;
}

/** Thrown inside an append's transaction to roll back an append whose ids clash (named after the rollback). */
class IdClash extends Error {}

/** A value in COPY's text format: backslash, tab, newline and carriage return escaped (JSON rarely has any). */
function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : value;
}

/** Items in their stored form, as the rows of item_blocks and item_ids for COPY. */
class ItemSlice {
  readonly indexes: number[] = [];
  /** Given ids, '' where the client gave none. */
  readonly ids: string[] = [];
  /**
   * The blocks' and the given ids' rows in COPY's text format, a buffer each per INSERT_SLICE items, encoded when
   * sealed (an append seals its slice before it waits its turn). Buffers live outside the JavaScript heap, so a slice
   * waiting for the database does not grow what the garbage collector must trace and move.
   */
  private readonly blockParts: Buffer[] = [];
  private readonly idParts: Buffer[] = [];
  /** Rows added since the last seal(), which puts them in blocks. */
  private rows: ItemRow[] = [];
  private readonly batch: string;

  constructor(
    batchId: string,
    readonly from: number,
    /** Items a block may hold (itemsPerBlock of the batch's options). */
    private readonly perBlock: number,
  ) {
    this.batch = copyText(batchId);
  }

  get length(): number {
    return this.ids.length;
  }

  push(row: ItemRow): void {
    this.indexes.push(this.from + this.ids.length);
    this.ids.push(row[0]);
    this.rows.push(row);
    if (this.rows.length === INSERT_SLICE) this.seal();
  }

  seal(): void {
    if (this.rows.length === 0) return;
    const first = this.from + this.ids.length - this.rows.length;
    const blocks: string[] = [];
    for (const { at, n, inputs } of itemBlocks(this.rows, this.perBlock)) {
      blocks.push(`${this.batch}\t${first + at}\t${n}\t${copyText(inputs)}\n`);
    }
    this.blockParts.push(Buffer.from(blocks.join('')));
    const ids: string[] = [];
    this.rows.forEach(([id], k) => {
      if (id !== '') ids.push(`${this.batch}\t${first + k}\t${copyText(id)}\n`);
    });
    if (ids.length > 0) this.idParts.push(Buffer.from(ids.join('')));
    this.rows = [];
  }

  /**
   * COPY, not INSERT: the rows stream in PostgreSQL's text format, which it parses faster than unnested arrays
   * (and the client builds faster than array literals). A duplicate id still fails with the unique index's error.
   */
  async insert(client: pg.PoolClient): Promise<void> {
    this.seal();
    for (const [parts, sql] of [
      [this.blockParts, 'COPY item_blocks (batch_id, first, n, inputs) FROM STDIN'],
      [this.idParts, 'COPY item_ids (batch_id, idx, client_id) FROM STDIN'],
    ] as const) {
      for (const part of parts) await pipeline(Readable.from([part]), client.query(copyFrom(sql)));
    }
  }
}
