import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import type pg from 'pg';
import {
  RateLimiterPostgres,
  RateLimiterRes,
  RateLimiterSQLite,
  type RateLimiterStoreAbstract,
} from 'rate-limiter-flexible';
import { openSqlite } from './sqlite.js';
import { toStoreUnavailable } from './store-unavailable.js';

/** What the limiter says about one more request. */
export type WorkLimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * The rate limit of requests that create work, per API key, kept in the item store's database so that every API
 * process sharing that database draws on one budget per key (a per-process limit would grow with the number of
 * processes). Built on rate-limiter-flexible, as a fixed window: a key's first request opens a one-minute window
 * in which `perMinute` requests are allowed, all at once if the client likes (the burst is the whole budget);
 * further requests are refused until the window ends, and Retry-After says when that is. Across a window's edge
 * a client may therefore get up to twice `perMinute` within a minute, never more.
 *
 * If the database cannot be reached or cannot write (store-unavailable.ts), consume() rejects with
 * StoreUnavailableError (503, retry shortly) rather than letting requests through: the request would need the same
 * database next (idempotency keys, items), and failing open per process would quietly lift the shared limit.
 */
export interface WorkLimiter {
  /** Requests per API key per minute; 0 means no limit. */
  readonly perMinute: number;
  consume(apiKey: string): Promise<WorkLimitDecision>;
  /** Closes what the limiter opened itself (a SQLite file given by path); never a pool or a handle it was given. */
  close(): Promise<void>;
}

/** The table, created by the item store's migrations (migrations.ts); its columns are the library's. */
const TABLE = 'rate_limits';
/** Room for other limits in the same table. */
const KEY_PREFIX = 'work';
/** Windows that ended this long ago are deleted by the occasional sweep. */
const SWEEP_AFTER_MS = 60 * 60 * 1000;

/**
 * A limiter on the SQLite item store: `db` is an open better-sqlite3 handle (left open by close()) or the file's
 * path (opened here, closed by close()). The file must hold the item store's schema (open the SqliteItemStore
 * first). 0 requests per minute: a limiter that always allows and never opens the file.
 */
export function sqliteWorkLimiter(db: Database.Database | string, perMinute: number): WorkLimiter {
  checkPerMinute(perMinute);
  if (perMinute === 0) return unlimited();
  const handle = typeof db === 'string' ? openSqlite(db) : db;
  const limiter = new RateLimiterSQLite({
    storeClient: handle,
    storeType: 'better-sqlite3',
    ...limiterOptions(perMinute),
  });
  return {
    perMinute,
    consume: (apiKey) => consume(limiter as ClearingLimiter, apiKey),
    close: async () => {
      if (typeof db === 'string') handle.close();
    },
  };
}

/**
 * A limiter on the PostgreSQL item store, through `pool` (left open by close()). The database must hold the item
 * store's schema (open the PostgresItemStore first). 0 requests per minute: a limiter that always allows and never
 * queries.
 */
export function postgresWorkLimiter(pool: pg.Pool, perMinute: number): WorkLimiter {
  checkPerMinute(perMinute);
  if (perMinute === 0) return unlimited();
  const limiter = new RateLimiterPostgres({
    storeClient: pool,
    storeType: 'pool',
    ...limiterOptions(perMinute),
  });
  return {
    perMinute,
    consume: (apiKey) => consume(limiter as ClearingLimiter, apiKey),
    close: async () => {},
  };
}

/**
 * What both backends' limiters share: the migrated table, `perMinute` points per 60 s window, and no sweep timer
 * of the library's own (its rejection is never handled, so a busy or closed database would end the process;
 * expired rows are swept on consume instead).
 */
function limiterOptions(perMinute: number) {
  return {
    tableName: TABLE,
    tableCreated: true,
    clearExpiredByTimeout: false,
    keyPrefix: KEY_PREFIX,
    points: perMinute,
    duration: 60,
  };
}

function checkPerMinute(perMinute: number): void {
  if (!Number.isInteger(perMinute) || perMinute < 0) {
    throw new RangeError(`perMinute must be a whole number >= 0 (0: no limit), not ${perMinute}`);
  }
}

function unlimited(): WorkLimiter {
  return { perMinute: 0, consume: async () => ({ allowed: true }), close: async () => {} };
}

/** clearExpired() is public in both limiters' code (the library's own timer calls it) but missing from its types. */
type ClearingLimiter = RateLimiterStoreAbstract & { clearExpired(expireMs: number): Promise<void> };

async function consume(limiter: ClearingLimiter, apiKey: string): Promise<WorkLimitDecision> {
  try {
    // Hashed: the table then holds no API keys, and its keys have one length whatever the API keys' length.
    await limiter.consume(createHash('sha256').update(apiKey).digest('hex'));
  } catch (err) {
    if (!(err instanceof RateLimiterRes)) throw toStoreUnavailable(err);
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(err.msBeforeNext / 1000)) };
  }
  if (Math.random() < 0.01) {
    // Only housekeeping: a failed sweep is left to a later one rather than failing an allowed request.
    await limiter.clearExpired(Date.now() - SWEEP_AFTER_MS).catch(() => undefined);
  }
  return { allowed: true };
}
