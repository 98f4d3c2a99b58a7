// The lock around filling a per-user cache entry that several processes may ask for at once (the Temporal CLI,
// the bench's Redis), so two of them asking together fill it once. proper-lockfile does the locking: an atomic
// lock directory, refreshed while it is held, taken over once its holder stops refreshing it (a process that
// died), and removed when the holding process exits.
import lockfile from 'proper-lockfile';

/** How long to wait for a holder that is still refreshing its lock before giving up on it. */
const WAIT_MS = 30 * 60 * 1000;

/**
 * Where the lock for `target` lives: a sibling directory, as `target` itself may be replaced by a rename. Not
 * `<target>.lock`: that name holds a plain file wherever the hand-written lock of earlier versions was left behind.
 */
export function lockPathOf(target) {
  return `${target}.lockdir`;
}

/**
 * Runs `fn` while holding the lock on the cache entry `target` (which need not exist; its parent must). When another
 * process holds it, logs once that it waits, then waits until that process releases it or dies.
 * @template T
 * @param {string} target
 * @param {{ log: (line: string) => void, what: string }} options `what` completes "another process is ...".
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withCacheLock(target, { log, what }, fn) {
  const lockfilePath = lockPathOf(target);
  const options = {
    realpath: false,
    lockfilePath,
    // Losing the lock (its directory removed, or not refreshed in time) risks only a second fill of the same
    // entry, which writes into its own staging directory and renames it into place: say so and carry on.
    onCompromised: (err) => log(`the lock ${lockfilePath} was lost (${err.message}); carrying on`),
  };
  let release;
  try {
    release = await lockfile.lock(target, options);
  } catch (err) {
    if (err.code !== 'ELOCKED') throw err;
    log(`another process is ${what}; waiting for it (lock ${lockfilePath})`);
    const waiting = { forever: true, factor: 1, minTimeout: 500, maxTimeout: 500, maxRetryTime: WAIT_MS };
    release = await lockfile.lock(target, { ...options, retries: waiting }).catch((cause) => {
      throw new Error(
        `gave up waiting for the lock ${lockfilePath}: another process is still ${what}. ` +
          `If none is, remove ${lockfilePath} and try again.`,
        { cause },
      );
    });
  }
  try {
    return await fn();
  } finally {
    await release().catch((err) => log(`could not release the lock ${lockfilePath} (${err.message})`));
  }
}
