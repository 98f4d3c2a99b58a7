// The item store's schema, as numbered migrations applied at start-up by both backends (SQLite and PostgreSQL):
// the same versions, the same `schema_migrations` table, the same refusal of a schema newer than this code.
// A migration is never edited once released: a change is a new migration at the end.
import { StartupError } from '../errors.js';

export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'batches, items, results, the event log, failed webhook deliveries, idempotency keys',
    // IF NOT EXISTS: SQLite files from before versioned migrations already hold these tables (sqlite-item-store.ts
    // adds the columns the oldest of them lack before this runs).
    sqlite: `
CREATE TABLE IF NOT EXISTS batches (
  id         TEXT PRIMARY KEY,
  model      TEXT NOT NULL,
  version    INTEGER,
  total      INTEGER NOT NULL,
  options    TEXT NOT NULL,
  metadata   TEXT,
  created_at TEXT NOT NULL,
  tenant     TEXT NOT NULL DEFAULT 'default',
  webhook    TEXT
);
CREATE TABLE IF NOT EXISTS items (
  batch_id  TEXT NOT NULL,
  idx       INTEGER NOT NULL,
  client_id TEXT NOT NULL, -- '' when the client gave none: the item's id is then its index
  inputs    TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
-- Client ids are unique per batch. Only ids a client gave are indexed (default ids are the primary key's idx);
-- a client id that reads as another item's index is refused by appendItems.
CREATE UNIQUE INDEX IF NOT EXISTS items_by_explicit_id ON items (batch_id, client_id) WHERE client_id <> '';
DROP INDEX IF EXISTS items_by_client_id;
-- A global AUTOINCREMENT seq: SQLite commits one writer at a time, so a reader never sees seq n+1 without n.
CREATE TABLE IF NOT EXISTS events (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  batch_id    TEXT NOT NULL,
  idx         INTEGER NOT NULL,
  status      TEXT NOT NULL,
  attempts    INTEGER NOT NULL,
  error       TEXT,
  finished_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_batch ON events (batch_id, seq);
CREATE TABLE IF NOT EXISTS webhook_failures (
  batch_id   TEXT NOT NULL,
  message_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  attempts   INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  failed_at  TEXT NOT NULL,
  PRIMARY KEY (batch_id, message_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results (
  batch_id    TEXT NOT NULL,
  idx         INTEGER NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
  attempts    INTEGER NOT NULL,
  result      TEXT,
  error       TEXT,
  started_at  TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency_keys (
  scope       TEXT NOT NULL,
  key         TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status      INTEGER,
  response    TEXT,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) WITHOUT ROWID;
`,
    postgres: `
CREATE TABLE batches (
  id         TEXT PRIMARY KEY,
  model      TEXT NOT NULL,
  version    INTEGER,
  total      INTEGER NOT NULL,
  options    TEXT NOT NULL,
  metadata   TEXT,
  created_at TEXT NOT NULL,
  tenant     TEXT NOT NULL DEFAULT 'default',
  webhook    TEXT
);
CREATE TABLE items (
  batch_id  TEXT NOT NULL,
  idx       INTEGER NOT NULL,
  client_id TEXT NOT NULL,
  inputs    TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)
);
CREATE UNIQUE INDEX items_by_explicit_id ON items (batch_id, client_id) WHERE client_id <> '';
-- Writers insert outcomes with seq NULL (no lock between writers); a reader numbers the committed ones of a batch
-- under the batch's advisory lock before it reads (see postgres-item-store.ts): seqs then appear in order.
CREATE TABLE events (
  id          BIGSERIAL PRIMARY KEY,
  batch_id    TEXT NOT NULL,
  seq         BIGINT,
  idx         INTEGER NOT NULL,
  status      TEXT NOT NULL,
  attempts    INTEGER NOT NULL,
  error       TEXT,
  finished_at TEXT NOT NULL
);
CREATE UNIQUE INDEX events_by_batch ON events (batch_id, seq);
CREATE INDEX events_unnumbered ON events (batch_id, id) WHERE seq IS NULL;
CREATE TABLE webhook_failures (
  batch_id   TEXT NOT NULL,
  message_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  attempts   INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  failed_at  TEXT NOT NULL,
  PRIMARY KEY (batch_id, message_id)
);
CREATE TABLE results (
  batch_id    TEXT NOT NULL,
  idx         INTEGER NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
  attempts    INTEGER NOT NULL,
  result      TEXT,
  error       TEXT,
  started_at  TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)
);
CREATE TABLE idempotency_keys (
  scope       TEXT NOT NULL,
  key         TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status      INTEGER,
  response    TEXT,
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (scope, key)
);
`,
  },
  {
    version: 2,
    name: "the batch's end in its event log; retention (ended_at, staged uploads)",
    // An end event has kind 'end', idx -1, status the batch's, and the summary as JSON; one per batch.
    sqlite: `
ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'item';
ALTER TABLE events ADD COLUMN summary TEXT;
CREATE UNIQUE INDEX events_one_end ON events (batch_id) WHERE kind = 'end';
ALTER TABLE batches ADD COLUMN ended_at TEXT;
CREATE INDEX batches_by_end ON batches (ended_at) WHERE ended_at IS NOT NULL;
CREATE TABLE uploads (batch_id TEXT PRIMARY KEY, started_at TEXT NOT NULL) WITHOUT ROWID;
`,
    postgres: `
ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'item';
ALTER TABLE events ADD COLUMN summary TEXT;
CREATE UNIQUE INDEX events_one_end ON events (batch_id) WHERE kind = 'end';
ALTER TABLE batches ADD COLUMN ended_at TEXT;
CREATE INDEX batches_by_end ON batches (ended_at) WHERE ended_at IS NOT NULL;
CREATE TABLE uploads (batch_id TEXT PRIMARY KEY, started_at TEXT NOT NULL);
`,
  },
  {
    version: 3,
    name: 'the rate limit of requests that create work, shared by every API process',
    // rate-limiter-flexible's table (rate-limit-store.ts passes tableCreated: true), in its column order: its
    // PostgreSQL upsert inserts VALUES (key, points, expire) without naming the columns. expire is in epoch ms.
    sqlite: `
CREATE TABLE rate_limits (
  key    TEXT PRIMARY KEY,
  points INTEGER NOT NULL DEFAULT 0,
  expire INTEGER
) WITHOUT ROWID;
`,
    postgres: `
CREATE TABLE rate_limits (
  key    TEXT PRIMARY KEY,
  points INTEGER NOT NULL DEFAULT 0,
  expire BIGINT
);
`,
  },
  {
    version: 4,
    name: "the readiness probe's row",
    // One row that every process's ItemStore.probe() overwrites: a committed write, so it needs the disk (SQLite's
    // write-ahead log, PostgreSQL's WAL) like any other, and it leaves nothing behind that grows.
    sqlite: `
CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), probed_at TEXT NOT NULL);
`,
    postgres: `
CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), probed_at TEXT NOT NULL);
`,
  },
  {
    version: 5,
    name: 'the OpenAI-compatible API: uploaded files (in chunks) and batches',
    // Files are stored as chunks of up to a MiB, so an upload is streamed in and a download streamed out. created_at
    // is in epoch ms.
    sqlite: `
CREATE TABLE files (
  id         TEXT PRIMARY KEY,
  tenant     TEXT NOT NULL,
  purpose    TEXT NOT NULL,
  filename   TEXT NOT NULL,
  bytes      INTEGER NOT NULL, -- -1 while the upload runs: not listed, not readable
  created_at INTEGER NOT NULL
);
CREATE INDEX files_by_tenant ON files (tenant, created_at, id);
CREATE TABLE file_chunks (
  file_id TEXT NOT NULL,
  n       INTEGER NOT NULL,
  data    BLOB NOT NULL,
  PRIMARY KEY (file_id, n)
);
CREATE TABLE openai_batches (
  id         TEXT PRIMARY KEY, -- the batchline batch's id (the OpenAI id is batch_<id>)
  tenant     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  record     TEXT NOT NULL
);
CREATE INDEX openai_batches_by_tenant ON openai_batches (tenant, created_at, id);
`,
    postgres: `
CREATE TABLE files (
  id         TEXT PRIMARY KEY,
  tenant     TEXT NOT NULL,
  purpose    TEXT NOT NULL,
  filename   TEXT NOT NULL,
  bytes      BIGINT NOT NULL, -- -1 while the upload runs: not listed, not readable
  created_at BIGINT NOT NULL
);
CREATE INDEX files_by_tenant ON files (tenant, created_at, id);
CREATE TABLE file_chunks (
  file_id TEXT NOT NULL,
  n       INTEGER NOT NULL,
  data    BYTEA NOT NULL,
  PRIMARY KEY (file_id, n)
);
CREATE TABLE openai_batches (
  id         TEXT PRIMARY KEY, -- the batchline batch's id (the OpenAI id is batch_<id>)
  tenant     TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  record     TEXT NOT NULL
);
CREATE INDEX openai_batches_by_tenant ON openai_batches (tenant, created_at, id);
`,
  },
  {
    version: 6,
    name: "a batch's outcomes counted in blocks of 64 items, kept as they are written",
    // Row (batch, b) counts the outcomes of items [64b, 64b + 64): an item map or the totals of a batch of any size
    // read 1/64 of the rows. The result writes keep it in the same transaction, one upsert per block written (in
    // one run, a trigger per row cost SQLite 1.5-2 µs more per result written). A batch's deletion removes its rows
    // with the rest (no delete trigger: a purge would run it once per item).
    sqlite: `
CREATE TABLE result_blocks (
  batch_id  TEXT NOT NULL,
  block     INTEGER NOT NULL,
  succeeded INTEGER NOT NULL,
  failed    INTEGER NOT NULL,
  PRIMARY KEY (batch_id, block)
) WITHOUT ROWID;
INSERT INTO result_blocks (batch_id, block, succeeded, failed)
  SELECT batch_id, idx / 64, SUM(status = 'succeeded'), SUM(status = 'failed') FROM results GROUP BY batch_id, idx / 64;
-- The writer adds each outcome it writes to its block (sqlite-item-store.ts putResults, one upsert per block); an
-- outcome that replaces another (a retried failure) takes the one it replaces away here. Replacing is rare, so
-- the trigger costs the common write nothing.
CREATE TRIGGER results_replaced AFTER UPDATE OF status ON results BEGIN
  UPDATE result_blocks SET succeeded = succeeded - (OLD.status = 'succeeded'), failed = failed - (OLD.status = 'failed')
  WHERE batch_id = OLD.batch_id AND block = OLD.idx / 64;
END;
`,
    postgres: `
CREATE TABLE result_blocks (
  batch_id  TEXT NOT NULL,
  block     INTEGER NOT NULL,
  succeeded INTEGER NOT NULL,
  failed    INTEGER NOT NULL,
  PRIMARY KEY (batch_id, block)
);
INSERT INTO result_blocks (batch_id, block, succeeded, failed)
  SELECT batch_id, idx / 64, COUNT(*) FILTER (WHERE status = 'succeeded'), COUNT(*) FILTER (WHERE status = 'failed')
  FROM results GROUP BY batch_id, idx / 64;
`,
  },
  {
    version: 7,
    name: "SQLite: a batch's items stored in blocks of consecutive items, client ids in a table of their own",
    // A row per item cost an upload about 1.8 µs per item in SQLite's B-tree, most of a 100k-line submission; a row
    // per block of up to 500 items (sqlite-item-store.ts MAX_ITEMS_PER_BLOCK), the items' inputs one per line, costs
    // about a third, and a chunk reads a few rows. The ids clients gave are rows of item_ids (an item without one has
    // its index as its id). Items stored before are moved over as blocks of one item. PostgreSQL keeps its rows.
    sqlite: `
CREATE TABLE item_blocks (
  batch_id TEXT NOT NULL,
  first    INTEGER NOT NULL, -- the index of the block's first item
  n        INTEGER NOT NULL, -- items [first, first + n), at most MAX_ITEMS_PER_BLOCK
  inputs   TEXT NOT NULL,    -- their inputs as JSON text, one item per line (none holds a newline when n > 1)
  PRIMARY KEY (batch_id, first)
);
CREATE TABLE item_ids (
  batch_id  TEXT NOT NULL,
  idx       INTEGER NOT NULL,
  client_id TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
CREATE UNIQUE INDEX item_ids_by_id ON item_ids (batch_id, client_id);
INSERT INTO item_blocks (batch_id, first, n, inputs) SELECT batch_id, idx, 1, inputs FROM items;
INSERT INTO item_ids (batch_id, idx, client_id) SELECT batch_id, idx, client_id FROM items WHERE client_id <> '';
DROP TABLE items;
`,
    postgres: '',
  },
  {
    version: 8,
    name: "PostgreSQL: a batch's items stored in blocks of consecutive items, client ids in a table of their own",
    // What migration 7 did for SQLite (item-store.ts MAX_ITEMS_PER_BLOCK): an upload's COPY writes a row per block
    // instead of a row per item, and a chunk reads a few rows. Items stored before move over as blocks of one. A block
    // of hundreds of items is stored out of line uncompressed (STORAGE EXTERNAL): compressing each on write and
    // decompressing it on read cost more than the rows saved (a 100k upload took longer than a row per item).
    sqlite: '',
    postgres: `
CREATE TABLE item_blocks (
  batch_id TEXT NOT NULL,
  first    INTEGER NOT NULL, -- the index of the block's first item
  n        INTEGER NOT NULL, -- items [first, first + n), at most MAX_ITEMS_PER_BLOCK
  inputs   TEXT NOT NULL,    -- their inputs as JSON text, one item per line (none holds a newline when n > 1)
  PRIMARY KEY (batch_id, first)
);
CREATE TABLE item_ids (
  batch_id  TEXT NOT NULL,
  idx       INTEGER NOT NULL,
  client_id TEXT NOT NULL,
  PRIMARY KEY (batch_id, idx)
);
CREATE UNIQUE INDEX item_ids_by_id ON item_ids (batch_id, client_id);
ALTER TABLE item_blocks ALTER COLUMN inputs SET STORAGE EXTERNAL;
INSERT INTO item_blocks (batch_id, first, n, inputs) SELECT batch_id, idx, 1, inputs FROM items;
INSERT INTO item_ids (batch_id, idx, client_id) SELECT batch_id, idx, client_id FROM items WHERE client_id <> '';
DROP TABLE items;
`,
  },
];

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The table both backends keep their applied versions in. */
export const MIGRATIONS_TABLE_DDL =
  'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)';

/** A database that a newer batchline has migrated: this code would misread it, so it refuses to start. */
export class SchemaTooNewError extends StartupError {
  constructor(
    readonly found: number,
    where: string,
  ) {
    super(
      `the item store at ${where} has schema version ${found}, newer than this batchline knows (${SCHEMA_VERSION}): ` +
        'run a batchline at least as new as the one that migrated it',
    );
  }
}

/** The migrations to apply to a database at `found` (0: empty), oldest first; refuses a newer schema. */
export function pendingMigrations(found: number, where: string): Migration[] {
  if (found > SCHEMA_VERSION) throw new SchemaTooNewError(found, where);
  return MIGRATIONS.filter((m) => m.version > found);
}
