// The failure types an item's activity reports for faults that retrying cannot fix. A closed set shared by the
// activities that throw them, the workflows whose retry policy stops on them, and the API that maps them to 400s.
// Dependency-free on purpose: workflow code imports it as a value (the determinism test bundles it).

export const PermanentItemFailure = {
  /** The item's inputs do not fit the model's signature. */
  InvalidInput: 'InvalidInput',
  /** The model (or version) is not in the repository. */
  UnknownModel: 'UnknownModel',
  /** The model's files exist but cannot be loaded. */
  ModelLoadError: 'ModelLoadError',
  /** The item is not in the item store (its batch was removed). */
  ItemNotFound: 'ItemNotFound',
  /** The model's output for the item holds NaN or an infinity: the same inputs would give it again. */
  NonFiniteOutput: 'NonFiniteOutput',
} as const;
export type PermanentItemFailure = (typeof PermanentItemFailure)[keyof typeof PermanentItemFailure];

/** The types as a list, for a retry policy's nonRetryableErrorTypes. */
export const PERMANENT_ITEM_FAILURES: readonly PermanentItemFailure[] = Object.values(PermanentItemFailure);
