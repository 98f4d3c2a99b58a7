// Which failures of the item store's database mean "its storage cannot serve right now" (a full disk, an I/O error,
// a lock held past the busy timeout, a PostgreSQL server that cannot be reached or is out of connections) rather
// than a fault of the request or of the code: both backends, and the idempotency keys and rate limits kept in the
// same database, turn them into StoreUnavailableError here. The API answers it with 503 and Retry-After; an item
// activity that meets it fails with the retryable type 'StoreUnavailableError' and Temporal runs the item again.
import { UnavailableError } from '../errors.js';

/** What went wrong with the storage, in the words the error's message uses. */
export const StoreFault = {
  diskFull: 'disk full',
  readOnly: 'read-only',
  io: 'I/O error',
  locked: 'locked',
  cannotOpen: 'cannot open',
  unreachable: 'unreachable',
  outOfResources: 'out of resources',
} as const;
export type StoreFault = (typeof StoreFault)[keyof typeof StoreFault];

const MESSAGES: Record<StoreFault, string> = {
  [StoreFault.diskFull]: 'the item store cannot write (disk full); try again shortly',
  [StoreFault.readOnly]: 'the item store cannot write (its storage is read-only); try again shortly',
  [StoreFault.io]: 'the item store cannot read or write its storage (I/O error); try again shortly',
  [StoreFault.locked]: 'the item store is locked by another writer; try again shortly',
  [StoreFault.cannotOpen]: 'the item store cannot open its database file; try again shortly',
  [StoreFault.unreachable]: 'the item store (PostgreSQL) is unavailable; try again shortly',
  [StoreFault.outOfResources]: 'the item store (PostgreSQL) is out of connections or memory; try again shortly',
};

/**
 * Thrown by the item store (either backend), its idempotency keys and its rate limits when the storage fails in a
 * way that a retry after a short while may get past; `cause` is the driver's error. An activity that lets it
 * through fails with the type 'StoreUnavailableError' (the SDK names a plain error's failure after its class):
 * retryable, like every type outside PermanentItemFailure.
 */
export class StoreUnavailableError extends UnavailableError {
  constructor(
    readonly fault: StoreFault,
    cause: unknown,
  ) {
    super(MESSAGES[fault]);
    this.cause = cause;
  }
}

/** SQLite's primary result codes (better-sqlite3's `code` is the extended one, e.g. SQLITE_IOERR_WRITE). */
const SQLITE_FAULTS = new Map<string, StoreFault>([
  ['FULL', StoreFault.diskFull],
  ['IOERR', StoreFault.io],
  ['READONLY', StoreFault.readOnly],
  ['CANTOPEN', StoreFault.cannotOpen],
  ['BUSY', StoreFault.locked], // reported only once busy_timeout has passed
]);

/** Node's system error codes, as a file system reports them. */
const SYSTEM_FAULTS = new Map<string, StoreFault>([
  ['ENOSPC', StoreFault.diskFull],
  ['EDQUOT', StoreFault.diskFull],
  ['EROFS', StoreFault.readOnly],
  ['EIO', StoreFault.io],
]);

/** PostgreSQL SQLSTATEs of its storage and resources (class 53, insufficient resources; 58030, io_error). */
const SQLSTATE_FAULTS = new Map<string, StoreFault>([
  ['53000', StoreFault.outOfResources], // insufficient_resources
  ['53100', StoreFault.diskFull], // disk_full
  ['53200', StoreFault.outOfResources], // out_of_memory
  ['53300', StoreFault.outOfResources], // too_many_connections
  ['58030', StoreFault.io], // io_error
  ['25006', StoreFault.readOnly], // read_only_sql_transaction: a standby (after a failover, until the new primary)
]);

/** Node socket errors that mean the server could not be reached or the connection broke. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ENOTFOUND', // at run time, a DNS outage (a host name wrong from the start fails open() instead)
]);

/** SQLSTATEs (besides class 08, connection exceptions) of a server that is going away or not yet there. */
const GOING_AWAY_SQLSTATES = new Set([
  '57P01', // admin_shutdown: the server is stopping (or a pooler cut us)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: the server is starting up or in recovery
  '53300', // too_many_connections: refused at connect
]);

/** Messages of the PostgreSQL driver and its pool for a connection lost, or not obtained in time. */
const DRIVER_MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /connection timeout/i,
];

/**
 * Whether `err` is a PostgreSQL connection-level failure (server down, restarting, unreachable, out of
 * connections): the connection it happened on is not to be used again.
 */
export function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || GOING_AWAY_SQLSTATES.has(code)) return true;
    if (/^08[0-9A-Z]{3}$/.test(code)) return true;
  }
  if (DRIVER_MESSAGES.some((m) => m.test(err.message))) return true;
  // Connecting to a host name that resolves to several addresses fails with one error per address.
  if (err instanceof AggregateError) return err.errors.some(isConnectionFailure);
  return false;
}

/** The storage fault `err` reports, or undefined when it is some other error (of the request, of the code). */
export function storeFault(err: unknown): StoreFault | undefined {
  if (err instanceof StoreUnavailableError) return err.fault;
  const code = (err as { code?: unknown } | null | undefined)?.code;
  if (typeof code === 'string') {
    const sqlite = /^SQLITE_([A-Z]+)/.exec(code);
    const fault = sqlite ? SQLITE_FAULTS.get(sqlite[1]!) : (SYSTEM_FAULTS.get(code) ?? SQLSTATE_FAULTS.get(code));
    if (fault) return fault;
  }
  return isConnectionFailure(err) ? StoreFault.unreachable : undefined;
}

/** `err` as a StoreUnavailableError (with `err` as its cause) when it is a storage fault; else `err` itself. */
export function toStoreUnavailable(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const fault = storeFault(err);
  return fault ? new StoreUnavailableError(fault, err) : err;
}

/** Runs synchronous storage work (better-sqlite3), rethrowing a storage fault as StoreUnavailableError. */
export function guardStorage<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw toStoreUnavailable(err);
  }
}
