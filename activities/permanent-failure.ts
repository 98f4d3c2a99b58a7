import { ApplicationFailure } from '@temporalio/common';
import { PermanentItemFailure } from '../src/contracts/item-failure-type.js';
import { InvalidInputError, ModelLoadError, NonFiniteOutputError, NotFoundError } from '../src/errors.js';

/**
 * Turns an error from the model runtime into the failure an activity throws: inputs that do not fit the model
 * (`InvalidInput`), an unknown model or version (`UnknownModel`), a model file that cannot load (`ModelLoadError`)
 * and a model output that is NaN or infinite (`NonFiniteOutput`) are permanent, so non-retryable; anything else
 * keeps its name as the type and is retried (a run past its timeout: `InferenceTimeout`).
 * `details` travel with the failure (the batch activities put the attempt number there).
 */
export function toActivityFailure(err: unknown, details?: unknown[]): ApplicationFailure {
  const permanent = (type: PermanentItemFailure, message: string) =>
    ApplicationFailure.create({ type, message, nonRetryable: true, details });
  if (err instanceof InvalidInputError) return permanent(PermanentItemFailure.InvalidInput, err.message);
  if (err instanceof NotFoundError) return permanent(PermanentItemFailure.UnknownModel, err.message);
  if (err instanceof ModelLoadError) return permanent(PermanentItemFailure.ModelLoadError, err.message);
  if (err instanceof NonFiniteOutputError) return permanent(PermanentItemFailure.NonFiniteOutput, err.message);
  if (err instanceof ApplicationFailure) {
    // Our details go with it (the attempt, whether its failure was recorded), its own after them.
    if (!details) return err;
    return ApplicationFailure.create({
      type: err.type ?? undefined,
      message: err.message,
      nonRetryable: err.nonRetryable === true,
      details: [...details, ...(err.details ?? [])],
      cause: err.cause,
    });
  }
  return ApplicationFailure.create({
    type: (err as Error)?.name ?? 'Error',
    message: (err as Error)?.message ?? String(err),
    details,
  });
}
