import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { ItemFailureDetail } from '../src/contracts/batch.js';

export interface DescribedFailure {
  type: string;
  message: string;
  /** Attempts the activity made, as its failure reports them. */
  attempts: number;
  /** Whether the activity recorded the failure in the item store (else the workflow must). */
  recorded: boolean;
}

/**
 * Pulls an item's error type, message, attempt count and whether it was recorded out of an activity failure. The item activities put the
 * attempt number in the failure's details; without it, a failure that exhausted the retry policy made
 * `maxAttempts` attempts and any other made one.
 */
export function describeFailure(err: unknown, maxAttempts: number): DescribedFailure {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const app = cause instanceof ApplicationFailure ? cause : undefined;
  const detail = app?.details?.[0] as Partial<ItemFailureDetail> | undefined;
  const exhausted = err instanceof ActivityFailure && err.retryState === 'MAXIMUM_ATTEMPTS_REACHED';
  return {
    type: app?.type ?? (cause as Error | undefined)?.name ?? 'Error',
    message: (cause as Error | undefined)?.message ?? String(err),
    attempts: detail?.attempt ?? (exhausted ? maxAttempts : 1),
    recorded: detail?.recorded === true,
  };
}
