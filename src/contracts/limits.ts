// Limits shared by the API's schemas and the workflows that enforce them again on messages.
// Dependency-free on purpose: workflow code imports it as a value (the determinism test bundles it).

/** Largest concurrency a batch takes, at submission or by setConcurrency (its activities stay well under
 * Temporal's 2,000 pending per workflow). */
export const MAX_CONCURRENCY = 512;
