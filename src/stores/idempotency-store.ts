import type Database from 'better-sqlite3';
import { openSqlite } from './sqlite.js';
import { guardStorage } from './store-unavailable.js';

/** What a first look at an idempotency key finds. */
export type IdempotencyClaim =
  /** Unused: the caller now holds the key and must complete() or release() it. */
  | { kind: 'new' }
  /** Used with the same request: here is the original response. */
  | { kind: 'replay'; status: number; body: unknown }
  /** Used with a different request. */
  | { kind: 'mismatch' }
  /** The same key is being served right now by another request. */
  | { kind: 'in-progress' };

/** How long a key is remembered (24 h, as Stripe and the IETF draft suggest). */
export const KEEP_MS = 24 * 60 * 60 * 1000;
/** A claim not completed within this time belongs to a request that died; the key may be claimed again. */
export const ABANDONED_MS = 10 * 60 * 1000;

/**
 * Idempotency keys of POSTs that create work, per scope (the API key), in the item store's database (table
 * `idempotency_keys`, created by the item store's migrations), so that every API process sharing that database
 * agrees on them. A key is claimed before the work is created and completed with its response; a claim is atomic
 * across processes, so two racing requests with one key never both create work. A key is forgotten KEEP_MS after
 * its claim, and an uncompleted claim may be taken over after ABANDONED_MS.
 */
export interface IdempotencyStore {
  claim(scope: string, key: string, fingerprint: string): Promise<IdempotencyClaim>;
  /** Stores the response of a claimed key: later claims with the same request replay it. */
  complete(scope: string, key: string, status: number, body: unknown): Promise<void>;
  /** Forgets a claim whose request failed, so the client may retry with the same key. */
  release(scope: string, key: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The IdempotencyStore of the SQLite item store (`<DATA_DIR>/batchline.db`), for the API processes of one machine.
 * better-sqlite3 is synchronous: a claim is one IMMEDIATE transaction (it takes the write lock before it reads, so
 * two processes cannot both find a key unused), answered as a resolved promise. A failing storage rejects with
 * StoreUnavailableError.
 */
export class SqliteIdempotencyStore implements IdempotencyStore {
  private readonly db: Database.Database;
  private readonly stmts;

  /** `file` must hold the item store's schema: open the SqliteItemStore (which migrates it) first. */
  constructor(file: string) {
    this.db = openSqlite(file);
    this.stmts = {
      get: this.db.prepare(
        'SELECT fingerprint, status, response, created_at FROM idempotency_keys WHERE scope = ? AND key = ?',
      ),
      insert: this.db.prepare('INSERT INTO idempotency_keys (scope, key, fingerprint, created_at) VALUES (?, ?, ?, ?)'),
      delete: this.db.prepare('DELETE FROM idempotency_keys WHERE scope = ? AND key = ?'),
      complete: this.db.prepare('UPDATE idempotency_keys SET status = ?, response = ? WHERE scope = ? AND key = ?'),
      expire: this.db.prepare('DELETE FROM idempotency_keys WHERE created_at < ?'),
    };
  }

  async claim(scope: string, key: string, fingerprint: string): Promise<IdempotencyClaim> {
    return guardStorage(() =>
      this.db
        .transaction((): IdempotencyClaim => {
          const now = Date.now();
          const row = this.stmts.get.get(scope, key) as
            { fingerprint: string; status: number | null; response: string | null; created_at: number } | undefined;
          const stale =
            row && (now - row.created_at > KEEP_MS || (row.status === null && now - row.created_at > ABANDONED_MS));
          if (row && !stale) {
            if (row.fingerprint !== fingerprint) return { kind: 'mismatch' };
            if (row.status === null) return { kind: 'in-progress' };
            return { kind: 'replay', status: row.status, body: JSON.parse(row.response!) };
          }
          if (row) this.stmts.delete.run(scope, key);
          this.stmts.insert.run(scope, key, fingerprint, now);
          if (Math.random() < 0.01) this.stmts.expire.run(now - KEEP_MS);
          return { kind: 'new' };
        })
        .immediate(),
    );
  }

  async complete(scope: string, key: string, status: number, body: unknown): Promise<void> {
    guardStorage(() => this.stmts.complete.run(status, JSON.stringify(body), scope, key));
  }

  async release(scope: string, key: string): Promise<void> {
    guardStorage(() => this.stmts.delete.run(scope, key));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
