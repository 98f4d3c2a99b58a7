import { ModelList, ModelResource } from '../../contracts/predict.js';
import { ModelLoadError, UnavailableError } from '../../errors.js';
import type { ModelRepository, ResolvedModel } from '../../runtime/model-repository.js';
import { clientSignature } from '../model-signature.js';
import { ModelPath } from '../path-params.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

/** What models there are and how to call them. */
export const modelRoutes: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v1/models',
    operationId: 'listModels',
    summary: 'Every servable model',
    description: 'Every model in the repository that has a version and a readable config.',
    tag: 'Models',
    responses: { 200: json(ModelList, 'The models.') },
    handler: async (_input, { res, deps: { models, log } }) => {
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
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/models/:name',
    operationId: 'getModel',
    summary: "A model's versions, signature and labels",
    tag: 'Models',
    request: { params: ModelPath },
    responses: { 200: json(ModelResource, 'The model.') },
    errors: [404, 503],
    handler: async ({ params: { name } }, { res, deps }) => {
      res.json(modelResource(await resolveServable(deps.models, name)));
    },
  }),
];

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
