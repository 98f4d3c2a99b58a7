// Connecting to PostgreSQL (DATABASE_URL): the URL check, the pool, and why a first connection failed. Which failures
// later mean "the database cannot serve right now" is decided in store-unavailable.ts, for both backends.
import pg from 'pg';
import { StartupError } from '../errors.js';
import { isConnectionFailure } from './store-unavailable.js';

/** A checked DATABASE_URL: the URL as given (for the driver) and a form safe to print (no password). */
export interface DatabaseUrl {
  url: string;
  /** The URL without its password: for logs and error messages. */
  redacted: string;
  /** `host:port`, for "cannot reach" messages. */
  server: string;
  database: string;
}

/**
 * Validates a `postgres://` or `postgresql://` URL that names a database. Throws an Error naming DATABASE_URL and
 * the reason; the message never contains the password (an unparseable URL is not echoed at all).
 */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('DATABASE_URL is not a parseable URL (expected postgres://user:password@host:5432/database)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`DATABASE_URL must be a postgres:// or postgresql:// URL, not ${parsed.protocol}//`);
  }
  if (parsed.password) parsed.password = '***';
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
  const redacted = parsed.toString();
  let database: string;
  try {
    database = decodeURIComponent(parsed.pathname.slice(1));
  } catch {
    throw new Error(`DATABASE_URL has a database name that is not valid percent-encoding: ${redacted}`);
  }
  if (database === '') {
    throw new Error(`DATABASE_URL names no database (expected .../<database> after the host): ${redacted}`);
  }
  return { url, redacted, server: `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`, database };
}

export interface PoolOptions {
  /** Most connections the pool opens (default 10). */
  max?: number;
  /** How long a query may wait for a connection, opening one included, before it fails as unavailable (default 5 s). */
  connectionTimeoutMillis?: number;
}

/** Idle time before TCP keepalive probes start (the OS default is often two hours). */
export const KEEPALIVE_DELAY_MS = 10_000;

/**
 * A bounded pool. Waiting for a connection is bounded too, so a server that is down or saturated answers "unavailable"
 * within seconds instead of piling requests up. TCP keepalive finds connections a network fault left half-open.
 */
export function createPool(url: string, { max = 10, connectionTimeoutMillis = 5_000 }: PoolOptions = {}): pg.Pool {
  if (!Number.isInteger(max) || max < 1) throw new Error(`pool size must be a positive integer, got ${max}`);
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis,
    // Connections stay open while idle (keepalive watches them): a quiet API or worker answers its next request
    // without first reconnecting and authenticating.
    idleTimeoutMillis: 0,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  });
  // An idle connection that the server closes (a restart, a failover) is reported here and dropped by the pool;
  // without a listener the event would crash the process. The next query opens a fresh connection, and fails as
  // unavailable if the server is still gone.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Why a first connection failed, in words that name DATABASE_URL: refused credentials, a missing database, an
 * unreachable server. Other errors are returned as they are.
 */
export function connectError(err: unknown, where: DatabaseUrl): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const reason = err instanceof Error ? err.message : String(err);
  let message: string | undefined;
  if (code === '28P01' || code === '28000') {
    message = `DATABASE_URL: the server refused the credentials (${reason}) for ${where.redacted}`;
  } else if (code === '3D000') {
    message = `DATABASE_URL: the database "${where.database}" does not exist on ${where.server} (${reason})`;
  } else if (isConnectionFailure(err)) {
    message = `DATABASE_URL: cannot connect to the PostgreSQL server at ${where.server} (${describe(err)})`;
  }
  return message ? new StartupError(message, { cause: err }) : err;
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(describe).join('; ');
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
