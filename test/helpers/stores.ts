// Item-store databases and fixtures for tests, on either backend: each migrated as the item store leaves it at
// start-up. `cleanups` collects what the caller removes after its test (in reverse order).
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { BatchOptions } from '../../src/contracts/batch.js';
import { itemRow, type ItemStore, type NewItem, type StoredBatch } from '../../src/stores/item-store.js';
import { PostgresItemStore } from '../../src/stores/postgres-item-store.js';
import { SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import type { TestPostgres } from './postgres.js';
import { tempDir } from './temporal.js';

export type Cleanups = (() => unknown)[];

/** A migrated SQLite file in a temp dir of its own. */
export async function migratedSqliteFile(cleanups: Cleanups, prefix: string): Promise<string> {
  const dir = tempDir(prefix);
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'batchline.db');
  await new SqliteItemStore(file).close();
  return file;
}

/** A new, migrated database on the test's PostgreSQL server. */
export async function migratedPostgresUrl(server: TestPostgres): Promise<string> {
  const url = await server.createDatabase();
  await (await PostgresItemStore.open(url)).close();
  return url;
}

/** A small pool, ended after the test. */
export function testPool(cleanups: Cleanups, url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  cleanups.push(() => pool.end());
  return pool;
}

/** A stored batch of `total` digits items with metadata, for store tests. */
export const storedBatch = (id: string, total: number): StoredBatch => ({
  id,
  model: 'digits',
  total,
  options: BatchOptions.parse({}),
  metadata: { team: 'ml' },
  createdAt: '2026-11-23T00:00:00.000Z',
  tenant: 'default',
});

/** `n` small items (inputs [i, i + 1]), with client ids `c-<i>` or none. */
export const storedItems = (n: number, withIds = false): NewItem[] =>
  Array.from({ length: n }, (_, i) => ({ ...(withIds ? { id: `c-${i}` } : {}), inputs: { input: [i, i + 1] } }));

/** Stages parsed items (ItemStore.appendRows with each item in its stored form), `perBlock` as given. */
export function appendItems(
  store: ItemStore,
  batchId: string,
  from: number,
  items: NewItem[],
  perBlock?: number,
): Promise<void> {
  return store.appendRows(batchId, from, items.map(itemRow), perBlock);
}
