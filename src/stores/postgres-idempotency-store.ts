import type pg from 'pg';
import { ABANDONED_MS, KEEP_MS, type IdempotencyClaim, type IdempotencyStore } from './idempotency-store.js';
import { toStoreUnavailable } from './store-unavailable.js';

/**
 * The database's clock in ms. Every host compares against the same clock, so a key's age does not depend on which
 * API process (and whose clock) claimed it.
 */
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
const STALE = `(created_at < ${NOW_MS} - ${KEEP_MS} OR (status IS NULL AND created_at < ${NOW_MS} - ${ABANDONED_MS}))`;

/**
 * How many times a claim goes round when the row it conflicts with keeps going away (released, or stale and
 * replaced) under it. Each round ends in a decision unless another request changed the key meanwhile; a key
 * churned that hard is answered as in progress (409), which the client retries.
 */
const MAX_ROUNDS = 5;

/**
 * The IdempotencyStore of the PostgreSQL item store, for API processes on any number of hosts. A claim never holds
 * a lock or a transaction open: the primary key decides. `INSERT ... ON CONFLICT DO NOTHING` takes an unused key
 * (exactly one of racing inserts succeeds); otherwise the row that is there is read and answered. A stale row is
 * deleted only while still stale (the condition is re-checked by the DELETE itself) before inserting again, so of
 * two requests taking over one stale key, only one inserts. The pool belongs to the caller: close() leaves it open.
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  constructor(private readonly pool: pg.Pool) {}

  async claim(scope: string, key: string, fingerprint: string): Promise<IdempotencyClaim> {
    for (let round = 1; ; round++) {
      const inserted = await this.query(
        `INSERT INTO idempotency_keys (scope, key, fingerprint, created_at) VALUES ($1, $2, $3, ${NOW_MS})
         ON CONFLICT (scope, key) DO NOTHING`,
        [scope, key, fingerprint],
      );
      if (inserted.rowCount === 1) {
        if (Math.random() < 0.01) {
          await this.query(`DELETE FROM idempotency_keys WHERE created_at < ${NOW_MS} - ${KEEP_MS}`, []);
        }
        return { kind: 'new' };
      }
      const { rows } = await this.query<{ fingerprint: string; status: number | null; response: string | null }>(
        `SELECT fingerprint, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2 AND NOT ${STALE}`,
        [scope, key],
      );
      const row = rows[0];
      if (row) {
        if (row.fingerprint !== fingerprint) return { kind: 'mismatch' };
        if (row.status === null) return { kind: 'in-progress' };
        return { kind: 'replay', status: row.status, body: JSON.parse(row.response!) };
      }
      if (round === MAX_ROUNDS) return { kind: 'in-progress' };
      await this.query(`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND ${STALE}`, [scope, key]);
    }
  }

  async complete(scope: string, key: string, status: number, body: unknown): Promise<void> {
    await this.query('UPDATE idempotency_keys SET status = $1, response = $2 WHERE scope = $3 AND key = $4', [
      status,
      JSON.stringify(body),
      scope,
      key,
    ]);
  }

  async release(scope: string, key: string): Promise<void> {
    await this.query('DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2', [scope, key]);
  }

  async close(): Promise<void> {}

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw toStoreUnavailable(err); // a storage or connection failure is 503 (retry shortly), anything else a fault
    }
  }
}
