import { Router } from 'express';
import type { ModelList, ModelResource } from '../../contracts/predict.js';
import { ModelLoadError, UnavailableError } from '../../errors.js';
import type { ModelRepository, ResolvedModel } from '../../runtime/model-repository.js';
import type { AppDeps } from '../app.js';
import { clientSignature } from '../model-signature.js';

/**
 * What models there are and how to call them:
 * - `GET /v1/models`: every model in the repository that has a version and a readable config.
 * - `GET /v1/models/:name`: one model's versions, signature, labels and batch size (404 if unknown).
 */
export function modelRoutes({ models, log }: AppDeps): Router {
  const router = Router();

  router.get('/v1/models', async (_req, res) => {
    const list: ModelList = { models: [] };
    for (const name of await models.names()) {
      try {
        list.models.push(modelResource(await models.resolve(name)));
      } catch (err) {
        // One broken model (bad config.json) must not hide the others; it is logged and left out.
        if (!(err instanceof ModelLoadError)) throw err;
        log.warn({ model: name, reason: err.reason }, 'model left out of the model list');
      }
    }
    res.json(list);
  });

  router.get('/v1/models/:name', async (req, res) => {
    res.json(modelResource(await resolveServable(models, req.params.name)));
  });

  return router;
}

/** Resolves a model, or explains why it cannot serve: unknown (NotFoundError, 404) or unloadable (503). */
export async function resolveServable(models: ModelRepository, name: string, version?: number): Promise<ResolvedModel> {
  return models.resolve(name, version).catch((err: unknown) => {
    if (err instanceof ModelLoadError)
      throw new UnavailableError(`model '${name}' cannot be loaded; see the server's log`);
    throw err;
  });
}

export function modelResource(model: ResolvedModel): ModelResource {
  const { config } = model;
  return {
    name: model.name,
    ...(config.description ? { description: config.description } : {}),
    versions: model.versions,
    latest: model.versions[model.versions.length - 1]!,
    ...clientSignature(config),
    ...(config.labels ? { labels: config.labels } : {}),
    maxBatchSize: config.maxBatchSize,
    links: { self: `/v1/models/${model.name}`, kserve: `/v2/models/${model.name}` },
  };
}
