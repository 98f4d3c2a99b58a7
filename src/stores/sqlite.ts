import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

/** How long a connection waits for a lock another connection holds (SQLite's busy timeout), in ms. */
const BUSY_TIMEOUT_MS = 10_000;
/** Pause between tries of switching a file to WAL while another connection writes it. */
const WAL_SWITCH_RETRY_MS = 10;

/**
 * Opens the SQLite file the API and the workers of one machine share: WAL (readers never block the writer),
 * `synchronous = NORMAL` (durable across process crashes; WAL makes it safe) and a busy timeout, because several
 * processes write the same file.
 */
export function openSqlite(file: string): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  switchToWal(db);
  db.pragma('synchronous = NORMAL');
  return db;
}

/**
 * Sets WAL mode, trying again while another connection writes the file. Switching a new file (still in rollback
 * mode) reads it, then writes; a reader cannot wait for another connection's write lock (SQLite refuses at once,
 * without its busy handler, as waiting could deadlock), so when `batchline dev` starts the API and two workers on a
 * new file together, one of them met another's switch and failed at start with SQLITE_BUSY. A file already in WAL
 * mode is left as it is at once.
 */
function switchToWal(db: Database.Database): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      // SQLITE_BUSY, or one of its extended codes (a snapshot gone stale, a recovery under way).
      if (!(err as { code?: string }).code?.startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, WAL_SWITCH_RETRY_MS); // a synchronous pause
    }
  }
}
