import { z } from 'zod';
import type { Request, Response } from 'express';
import type { ItemInputs } from '../../contracts/batch.js';
import { INFERENCE_HEADER, KServeInferBody, KServeInferResult } from '../../contracts/kserve-infer.js';
import {
  KServeModelMetadata,
  KServeModelReady,
  KServeServerMetadata,
  type KServeErrorResponse,
} from '../../contracts/predict.js';
import { OnTimeout } from '../../contracts/online-work.js';
import { ModelLoadError } from '../../errors.js';
import { fingerprint } from '../idempotency.js';
import type { ResolvedModel } from '../../runtime/model-repository.js';
import type { RouteDeps } from '../deps.js';
import { INFER_MEDIA_TYPES, readInferBody } from '../kserve-body.js';
import { kserveExtensionRoutes } from '../kserve-extension-routes.js';
import { parseInferBody } from '../kserve-infer-request.js';
import { sendInferResponse, wantsBinary } from '../kserve-infer-response.js';
import { statisticsOf } from '../kserve-stats.js';
import { modelMetadata, pickOutputs, stack, toItems } from '../kserve-tensors.js';
import { clientSignature } from '../model-signature.js';
import { defaultSyncTimeoutMs, runSyncTask } from '../online-tasks.js';
import { ModelPath, ModelVersionPath } from '../path-params.js';
import { defineRoute, json, type ApiRoute } from '../route.js';
import { packageVersion } from '../../version.js';
import { resolveServable } from './models.js';

/**
 * Server metadata, with the Triton extensions implemented. The model repository extension is left out: its index
 * is served, but models are not loaded or unloaded through the API. Shared memory, classification, sequences
 * and the rest are not implemented.
 */
const SERVER: KServeServerMetadata = {
  name: 'batchline',
  version: packageVersion(),
  extensions: ['binary_tensor_data', 'model_configuration', 'statistics'],
};

/** `Inference-Header-Content-Length`: where the JSON part of a body with binary tensor data ends. */
const InferHeaders = z.object({
  [INFERENCE_HEADER]: z
    .string()
    .regex(/^\d{1,15}$/, 'a byte count')
    .transform(Number)
    .optional()
    .meta({ description: 'Bytes of the body that are the JSON request; binary tensor data follows them.' }),
});

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
  ...kserveExtensionRoutes,
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
        "The inputs' first dimension is the batch: each row becomes one item of an online task on the interactive queue, and the outputs are stacked back along it. Waits up to PREDICT_TIMEOUT_MS. " +
        `With the binary tensor data extension, the first ${INFERENCE_HEADER} bytes of the body are the JSON request and the rest the bytes of the inputs with parameters.binary_data_size; outputs asked for with parameters.binary_data (or the request's binary_data_output) come as bytes after the JSON, the response's ${INFERENCE_HEADER} header saying where it ends (application/octet-stream).`,
      tag: TAG,
      createsWork: true,
      request: {
        params,
        headers: InferHeaders,
        stream: {
          mediaTypes: INFER_MEDIA_TYPES,
          orNoContentType: true,
          line: KServeInferBody,
          description:
            'JSON, as application/json, application/octet-stream or without Content-Type; binary tensor data after it.',
        },
      },
      badRequestParams: ['version'],
      responses: {
        200: {
          description:
            'The outputs, one row per input row (binary outputs after the JSON, as application/octet-stream).',
          content: { 'application/json': KServeInferResult, 'application/octet-stream': KServeInferResult },
        },
      },
      errors: [404, 503, 504],
      handler: async ({ params: { name, ...rest }, headers, idempotencyKey }, { req, res, deps }) => {
        const began = now();
        const raw = await readInferBody(req, deps.config.MAX_BODY_BYTES);
        const version = 'version' in rest ? rest.version : undefined;
        const model = await resolveServable(deps.models, name, version);
        const stats = statisticsOf(deps);
        try {
          const body = parseInferBody(raw, headers[INFERENCE_HEADER]);
          const signature = clientSignature(model.config);
          const items = toItems(model, signature.inputs, body);
          const wanted = pickOutputs(signature.outputs, body);
          const inferring = now();
          const { taskId, results } = await infer(deps, req, res, model, version, items, idempotencyKey);
          const answering = now();
          const result = {
            model_name: model.name,
            model_version: String(results[0]?.version ?? model.version),
            id: body.id ?? taskId,
            outputs: wanted.map((spec) => stack(model, spec, results)),
          };
          sendInferResponse(res, result, (output) => wantsBinary(body, output));
          const ns = (from: number, to: number) => (to - from) * 1e6;
          const times = { input: ns(began, inferring), infer: ns(inferring, answering), output: ns(answering, now()) };
          stats.succeeded(model.name, model.version, items.length, times);
        } catch (err) {
          stats.failed(model.name, model.version, (now() - began) * 1e6);
          throw err;
        }
      },
    }),
  ]),
];

const now = () => performance.now();

/** Runs the rows as one sync online task and waits for its results. */
function infer(
  deps: RouteDeps,
  req: Request,
  res: Response,
  model: ResolvedModel,
  version: number | undefined,
  items: ItemInputs[],
  key: string | undefined,
) {
  const { config, metrics, predict } = deps;
  return runSyncTask(deps, req, res, {
    source: 'kserve',
    timeoutMs: defaultSyncTimeoutMs(config),
    onTimeout: OnTimeout.continue,
    work: { key, fingerprint: fingerprint(req, req.bodyHash!) },
    start: (deadline) => {
      metrics.predictionRequests.inc({ source: 'kserve' }, items.length);
      return predict.start({ model: model.name, version, items }, { tenant: req.tenant, source: 'kserve' }, deadline);
    },
  });
}
