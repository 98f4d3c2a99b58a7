import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { InferItemInput, ItemResult } from '../src/contracts/batch.js';
import { InvalidInputError, ModelLoadError, NotFoundError } from '../src/errors.js';
import type { InferenceRuntime } from '../src/runtime/inference.js';

export interface InferenceActivityDeps {
  runtime: InferenceRuntime;
}

export function createInferenceActivities({ runtime }: InferenceActivityDeps) {
  return {
    /**
     * Infers one item. Permanent faults (inputs that do not fit the model, an unknown model or version, a model
     * file that cannot load) fail at once as non-retryable; anything else is thrown as is and retried.
     */
    async inferItem(input: InferItemInput): Promise<{ result: ItemResult; attempt: number }> {
      const { attempt } = Context.current().info;
      Context.current().heartbeat();
      try {
        const result = await runtime.infer(input.model, input.version, input.inputs);
        return { result, attempt };
      } catch (err) {
        throw toFailure(err, attempt);
      }
    },
  };
}

/** Maps the runtime's permanent errors to non-retryable failures; details carry the attempt for the workflow. */
function toFailure(err: unknown, attempt: number): unknown {
  const details = [{ attempt }];
  if (err instanceof InvalidInputError) {
    return ApplicationFailure.create({ type: 'InvalidInput', message: err.message, nonRetryable: true, details });
  }
  if (err instanceof NotFoundError) {
    return ApplicationFailure.create({ type: 'UnknownModel', message: err.message, nonRetryable: true, details });
  }
  if (err instanceof ModelLoadError) {
    return ApplicationFailure.create({ type: 'ModelLoadError', message: err.message, nonRetryable: true, details });
  }
  return ApplicationFailure.create({
    type: (err as Error)?.name ?? 'Error',
    message: (err as Error)?.message ?? String(err),
    details,
  });
}
