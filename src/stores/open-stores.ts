import type { Config } from '../config.js';
import { ITEM_HEARTBEAT_INTERVAL_MS } from '../contracts/liveness.js';
import type { Logger } from '../logger.js';
import { SqliteIdempotencyStore, type IdempotencyStore } from './idempotency-store.js';
import type { ItemStore } from './item-store.js';
import type { OpenAIStore } from './openai-store.js';
import { PostgresIdempotencyStore } from './postgres-idempotency-store.js';
import { PostgresItemStore } from './postgres-item-store.js';
import { PostgresOpenAIStore } from './postgres-openai-store.js';
import { createPool } from './postgres.js';
import { postgresWorkLimiter, sqliteWorkLimiter, type WorkLimiter } from './rate-limit-store.js';
import { itemStoreFile, SqliteItemStore } from './sqlite-item-store.js';
import { SqliteOpenAIStore } from './sqlite-openai-store.js';

/** Connections of an API process's second pool (idempotency keys and rate limits: one short statement each). */
const API_STATE_POOL = 4;

/**
 * A worker's SQLite item store: a write waits for another process's lock at most one heartbeat interval (it blocks the
 * event loop); past that it fails as StoreUnavailableError and the item activity tries again without blocking. A
 * chunk's outcomes are written on the store's own thread, while the worker's main thread runs its workflow tasks.
 * The bench's store ceiling opens its store the same way.
 */
export const WORKER_SQLITE_OPTIONS = {
  busyTimeoutMs: ITEM_HEARTBEAT_INTERVAL_MS,
  outcomesOnThread: true,
} satisfies ConstructorParameters<typeof SqliteItemStore>[1];

/**
 * The item store configuration names: PostgreSQL when DATABASE_URL is set (any number of hosts), else SQLite in
 * DATA_DIR (one machine). Migrates the schema first; rejects with a message naming DATABASE_URL when PostgreSQL
 * cannot be reached or refuses the credentials. `sqlite`: SqliteItemStore's options.
 */
export async function openItemStore(
  config: Config,
  sqlite: ConstructorParameters<typeof SqliteItemStore>[1] = {},
): Promise<ItemStore> {
  if (config.DATABASE_URL) return PostgresItemStore.open(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE });
  return new SqliteItemStore(itemStoreFile(config), sqlite);
}

/**
 * What an API process keeps in the shared database: items, idempotency keys, the per-key rate limit, and the files
 * and batches of the OpenAI-compatible API.
 */
export interface ApiStores {
  items: ItemStore;
  idempotency: IdempotencyStore;
  workLimiter: WorkLimiter;
  openai: OpenAIStore;
  close(): Promise<void>;
}

export async function openApiStores(config: Config): Promise<ApiStores> {
  const items = await openItemStore(config);
  if (config.DATABASE_URL) {
    const pool = createPool(config.DATABASE_URL, { max: API_STATE_POOL });
    const idempotency = new PostgresIdempotencyStore(pool);
    const workLimiter = postgresWorkLimiter(pool, config.RATE_LIMIT_PER_MINUTE);
    const openai = new PostgresOpenAIStore(pool);
    return {
      items,
      idempotency,
      workLimiter,
      openai,
      close: async () => {
        await Promise.all([idempotency.close(), workLimiter.close(), openai.close(), items.close()]);
        await pool.end();
      },
    };
  }
  const file = itemStoreFile(config);
  const idempotency = new SqliteIdempotencyStore(file);
  const workLimiter = sqliteWorkLimiter(file, config.RATE_LIMIT_PER_MINUTE);
  const openai = new SqliteOpenAIStore(file);
  return {
    items,
    idempotency,
    workLimiter,
    openai,
    close: async () => {
      await Promise.all([idempotency.close(), workLimiter.close(), openai.close()]);
      await items.close();
    },
  };
}

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Deletes what RETENTION_DAYS lets go (batches that ended longer ago; staged uploads never committed, after an
 * hour) about once an hour, the first time a minute after start. Every API process sweeps: deletes are idempotent,
 * and jitter keeps processes from sweeping at once. Returns a stop function.
 */
export function startRetention(store: ItemStore, config: Config, log: Logger): () => void {
  if (config.RETENTION_DAYS === 0) return () => undefined;
  const sweep = async () => {
    try {
      const expired = await store.deleteExpired({
        now: new Date(),
        retentionMs: config.RETENTION_DAYS * DAY_MS,
        stagedMs: HOUR_MS,
      });
      if (expired.batches + expired.uploads > 0) log.info(expired, 'retention: deleted expired batches and uploads');
    } catch (err) {
      log.warn({ err }, 'retention sweep failed; trying again next hour');
    }
  };
  let stopped = false;
  let timer = setTimeout(function run() {
    void sweep().finally(() => {
      if (!stopped) timer = setTimeout(run, HOUR_MS * (0.9 + Math.random() * 0.2)).unref();
    });
  }, 60_000).unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
