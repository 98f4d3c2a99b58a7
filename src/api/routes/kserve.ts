import {
  KServeInferRequest,
  KServeInferResponse,
  KServeModelMetadata,
  KServeModelReady,
  KServeServerMetadata,
  type KServeErrorResponse,
} from '../../contracts/predict.js';
import { OnTimeout } from '../../contracts/online-work.js';
import { ModelLoadError } from '../../errors.js';
import { fingerprint } from '../idempotency.js';
import { modelMetadata, pickOutputs, stack, toItems } from '../kserve-tensors.js';
import { clientSignature } from '../model-signature.js';
import { defaultSyncTimeoutMs, runSyncTask } from '../online-tasks.js';
import { ModelPath, ModelVersionPath } from '../path-params.js';
import { defineRoute, json, type ApiRoute } from '../route.js';
import { packageVersion } from '../../version.js';
import { resolveServable } from './models.js';

/** Server metadata; no protocol extensions (binary tensor data, shared memory, ...) are implemented. */
const SERVER: KServeServerMetadata = { name: 'batchline', version: packageVersion(), extensions: [] };

const TAG = 'Open Inference Protocol';

/** Each model route comes twice: for the latest version and for a version named in the path. */
const VARIANTS = [
  { path: '/v2/models/:name', params: ModelPath, suffix: '', what: 'model' },
  { path: '/v2/models/:name/versions/:version', params: ModelVersionPath, suffix: 'Version', what: 'model version' },
] as const;

/**
 * The Open Inference Protocol (KServe v2) over HTTP, so existing Triton and KServe clients work unchanged. An
 * infer request's first dimension is the batch: its rows become the items of one online task on the
 * interactive queue, and their outputs are stacked back along it. The health endpoints are served with the
 * other probes (health.ts). Errors take the protocol's shape, `{ "error": "<message>" }`, the one documented
 * exception to the house error shape (middleware/kserve-errors.ts).
 */
export const kserveRoutes: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v2',
    operationId: 'kserveServerMetadata',
    summary: 'Server metadata: name, version, protocol extensions (Open Inference Protocol)',
    tag: TAG,
    responses: { 200: json(KServeServerMetadata, 'The server.') },
    handler: (_input, { res }) => {
      res.json(SERVER);
    },
  }),
  ...VARIANTS.flatMap(({ path, params, suffix, what }) => [
    defineRoute({
      method: 'get',
      path,
      operationId: `kserveModelMetadata${suffix}`,
      summary: `${what === 'model' ? 'Model' : 'Model version'} metadata`,
      tag: TAG,
      request: { params },
      badRequestParams: ['version'],
      responses: { 200: json(KServeModelMetadata, 'Tensors with -1 for the batch dimension.') },
      errors: [404, 503],
      handler: async ({ params: { name, ...rest } }, { res, deps }) => {
        const version = 'version' in rest ? rest.version : undefined;
        res.json(modelMetadata(await resolveServable(deps.models, name, version)));
      },
    }),
    defineRoute({
      method: 'get',
      path: `${path}/ready`,
      operationId: `kserveModelReady${suffix}`,
      summary: `Whether the ${what} can serve`,
      tag: TAG,
      request: { params },
      badRequestParams: ['version'],
      responses: { 200: json(KServeModelReady, 'Ready.') },
      errors: [400, 404],
      handler: async ({ params: { name, ...rest } }, { res, deps }) => {
        const version = 'version' in rest ? rest.version : undefined;
        try {
          const model = await deps.models.resolve(name, version);
          res.json({ name: model.name, ready: true } satisfies KServeModelReady);
        } catch (err) {
          // The protocol says a model that is not ready answers 4xx: 400 for one that exists but cannot load.
          if (!(err instanceof ModelLoadError)) throw err;
          res
            .status(400)
            .json({ error: `model '${name}' is not ready: it cannot be loaded` } satisfies KServeErrorResponse);
        }
      },
    }),
    defineRoute({
      method: 'post',
      path: `${path}/infer`,
      operationId: `kserveInfer${suffix}`,
      summary: 'Infer a batch of rows (Open Inference Protocol)',
      description:
        "The inputs' first dimension is the batch: each row becomes one item of an online task on the interactive queue, and the outputs are stacked back along it. Waits up to PREDICT_TIMEOUT_MS.",
      tag: TAG,
      createsWork: true,
      request: { params, body: { schema: KServeInferRequest, what: 'inference request' } },
      badRequestParams: ['version'],
      responses: { 200: json(KServeInferResponse, 'The outputs, one row per input row.') },
      errors: [404, 503, 504],
      handler: async ({ params: { name, ...rest }, body, idempotencyKey }, { req, res, deps }) => {
        const { config, metrics, predict } = deps;
        const version = 'version' in rest ? rest.version : undefined;
        const model = await resolveServable(deps.models, name, version);
        const signature = clientSignature(model.config);
        const items = toItems(model, signature.inputs, body);
        const wanted = pickOutputs(signature.outputs, body);
        const { taskId, results } = await runSyncTask(deps, req, res, {
          source: 'kserve',
          timeoutMs: defaultSyncTimeoutMs(config),
          onTimeout: OnTimeout.continue,
          work: { key: idempotencyKey, fingerprint: fingerprint(req, req.bodyHash!) },
          start: (deadline) => {
            metrics.predictionRequests.inc({ source: 'kserve' }, items.length);
            return predict.start(
              { model: model.name, version, items },
              { tenant: req.tenant, source: 'kserve' },
              deadline,
            );
          },
        });
        res.json({
          model_name: model.name,
          model_version: String(results[0]?.version ?? model.version),
          id: body.id ?? taskId,
          outputs: wanted.map((spec) => stack(model, spec, results)),
        } satisfies KServeInferResponse);
      },
    }),
  ]),
];
