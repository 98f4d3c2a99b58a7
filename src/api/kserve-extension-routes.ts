import { KServeModelConfig, KServeModelStatistics, KServeRepositoryIndex } from '../contracts/kserve-extensions.js';
import { ModelLoadError } from '../errors.js';
import type { ModelRepository } from '../runtime/model-repository.js';
import { modelConfig } from './kserve-model-config.js';
import { statisticsOf } from './kserve-stats.js';
import { ModelPath, ModelVersionPath } from './path-params.js';
import { defineRoute, json, type ApiRoute } from './route.js';
import { resolveServable } from './routes/models.js';

// Triton's model configuration, statistics and repository index extensions (the index only: models are not
// loaded or unloaded through the API). Declared before the model routes, so `/v2/models/stats` is not read as
// the metadata of a model named `stats`.

const TAG = 'Open Inference Protocol';

const VARIANTS = [
  { path: '/v2/models/:name', params: ModelPath, suffix: '', what: 'model' },
  { path: '/v2/models/:name/versions/:version', params: ModelVersionPath, suffix: 'Version', what: 'model version' },
] as const;

/** Every version of every model that can serve, and, for one that cannot, why (a bad config.json, say). */
async function repositoryIndex(models: ModelRepository): Promise<KServeRepositoryIndex> {
  const index: KServeRepositoryIndex = [];
  for (const name of await models.names()) {
    try {
      const model = await models.resolve(name);
      for (const version of model.versions) index.push({ name, version: String(version), state: 'READY', reason: '' });
    } catch (err) {
      if (!(err instanceof ModelLoadError)) throw err;
      index.push({ name, state: 'UNAVAILABLE', reason: 'the model cannot be loaded; see the server log' });
    }
  }
  return index;
}

const STATS_DESCRIPTION =
  'What this API process saw of /v2 infer requests since it started, per model version (docs/api.md): ' +
  'inference_count counts rows, execution_count successful requests (one task each), compute_infer the wait ' +
  'for the task (the worker queue and the model run included; queue is not measured apart).';

export const kserveExtensionRoutes: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v2/models/stats',
    operationId: 'kserveStatistics',
    summary: 'Inference statistics of every model version (statistics extension)',
    description: STATS_DESCRIPTION,
    tag: TAG,
    responses: { 200: json(KServeModelStatistics, 'One entry per model version.') },
    handler: async (_input, { res, deps }) => {
      const stats = statisticsOf(deps);
      const index = await repositoryIndex(deps.models);
      const model_stats = index.flatMap((e) => (e.version ? [stats.stat(e.name, Number(e.version))] : []));
      res.json({ model_stats } satisfies KServeModelStatistics);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/v2/repository/index',
    operationId: 'kserveRepositoryIndex',
    summary: 'Every model version in the repository and its state (model repository extension, index only)',
    description: 'A request body, if any, is not read: every model is listed, ready or not.',
    tag: TAG,
    responses: { 200: json(KServeRepositoryIndex, 'One entry per model version; a model that cannot load, once.') },
    handler: async (_input, { res, deps }) => {
      res.json(await repositoryIndex(deps.models));
    },
  }),
  ...VARIANTS.flatMap(({ path, params, suffix, what }) => [
    defineRoute({
      method: 'get',
      path: `${path}/config`,
      operationId: `kserveModelConfig${suffix}`,
      summary: `The ${what}'s configuration (model configuration extension)`,
      tag: TAG,
      request: { params },
      badRequestParams: ['version'],
      responses: { 200: json(KServeModelConfig, "config.json as a Triton model configuration, in the client's view.") },
      errors: [404, 503],
      handler: async ({ params: { name, ...rest } }, { res, deps }) => {
        const version = 'version' in rest ? rest.version : undefined;
        res.json(modelConfig(await resolveServable(deps.models, name, version)));
      },
    }),
    defineRoute({
      method: 'get',
      path: `${path}/stats`,
      operationId: `kserveModelStatistics${suffix}`,
      summary: `Inference statistics of the ${what === 'model' ? "model's versions" : 'model version'}`,
      description: STATS_DESCRIPTION,
      tag: TAG,
      request: { params },
      badRequestParams: ['version'],
      responses: { 200: json(KServeModelStatistics, 'One entry per version.') },
      errors: [404, 503],
      handler: async ({ params: { name, ...rest } }, { res, deps }) => {
        const version = 'version' in rest ? rest.version : undefined;
        const model = await resolveServable(deps.models, name, version);
        const stats = statisticsOf(deps);
        const versions = version === undefined ? model.versions : [model.version];
        res.json({ model_stats: versions.map((v) => stats.stat(name, v)) } satisfies KServeModelStatistics);
      },
    }),
  ]),
];
