// How soon the death of a batch worker is noticed, so the items it was running run again elsewhere within
// seconds. Dependency-free: workflow code (activity options) and the worker (heartbeat throttle) share it.

/** A running remote item activity tells the server it is alive this often. */
export const ITEM_HEARTBEAT_INTERVAL_MS = 500;

/**
 * After this long without a heartbeat the server ends the item's attempt as timed out and retries it, on any
 * worker: four missed beats, so a slow beat or two (a busy event loop, a busy server) is not taken for a death.
 */
export const ITEM_HEARTBEAT_TIMEOUT_MS = 4 * ITEM_HEARTBEAT_INTERVAL_MS;
