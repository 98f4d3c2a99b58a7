import { InvalidRequestError, NotFoundError, VersionNotFoundError } from '../errors.js';
import type { ModelRepository, ResolvedModel } from '../runtime/model-repository.js';

/**
 * The model a /v1 request body names. An unknown model or version is the body's fault, so it is a 400 on the
 * `model` field, an unknown version on `version` (a path that names a model, as /v2 does, answers 404 instead).
 */
export async function resolveRequestedModel(
  models: ModelRepository,
  name: string,
  version?: number,
): Promise<ResolvedModel> {
  return models.resolve(name, version).catch((err: unknown) => {
    if (err instanceof NotFoundError) {
      const field = err instanceof VersionNotFoundError ? 'version' : 'model';
      throw new InvalidRequestError(err.message, [{ path: [field], message: err.message }]);
    }
    throw err;
  });
}
