import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

/**
 * Opens the SQLite file the API and the workers of one machine share: WAL (readers never block the writer),
 * `synchronous = NORMAL` (durable across process crashes; WAL makes it safe) and a busy timeout, because several
 * processes write the same file.
 */
export function openSqlite(file: string): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 10000');
  return db;
}
