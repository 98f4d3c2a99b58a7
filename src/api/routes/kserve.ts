import { packageVersion } from '../../version.js';
import { Router, type ErrorRequestHandler, type Request } from 'express';
import type { Logger } from 'pino';
import type { ItemInputs, ItemResult } from '../../contracts/batch.js';
import {
  KServeInferRequest,
  type KServeDatatype,
  type KServeErrorResponse,
  type KServeInferResponse,
  type KServeModelMetadata,
  type KServeServerMetadata,
  type KServeTensorMetadata,
  type TensorSignature,
} from '../../contracts/predict.js';
import {
  AppError,
  InvalidRequestError,
  ModelLoadError,
  NotFoundError,
  RateLimitedError,
  TimeoutError,
} from '../../errors.js';
import { checkItemInputs } from '../../runtime/input-validation.js';
import type { ResolvedModel } from '../../runtime/model-repository.js';
import type { RouteDeps } from '../app.js';
import { clientSignature, EMBEDDING_OUTPUT, TEXT_DTYPE } from '../model-signature.js';
import { parseOrThrow } from '../middleware/validate.js';
import { awaitTask, requireJson, startTaskOnce } from '../online-tasks.js';
import { resolveServable } from './models.js';

/** What the metadata endpoint calls the backend, as Triton does for ONNX models. */
const PLATFORM = 'onnxruntime_onnx';

/** The protocol's datatype of each element type a signature uses. */
const DATATYPE: Record<string, KServeDatatype> = {
  float32: 'FP32',
  float64: 'FP64',
  int8: 'INT8',
  uint8: 'UINT8',
  int16: 'INT16',
  uint16: 'UINT16',
  int32: 'INT32',
  int64: 'INT64',
  bool: 'BOOL',
  [TEXT_DTYPE]: 'BYTES',
};

/** Server metadata; no protocol extensions (binary tensor data, shared memory, ...) are implemented. */
const SERVER: KServeServerMetadata = { name: 'batchline', version: packageVersion(), extensions: [] };

const MODEL = '/v2/models/:name';
const VERSIONED = '/v2/models/:name/versions/:version';

/**
 * The Open Inference Protocol (KServe v2) over HTTP, so existing Triton and KServe clients work unchanged:
 * - `GET /v2`: server metadata.
 * - `GET /v2/models/:name[/versions/:v]`: model metadata, tensors with -1 for the batch dimension.
 * - `GET /v2/models/:name[/versions/:v]/ready`: 200 when the model (version) can serve.
 * - `POST /v2/models/:name[/versions/:v]/infer`: the inputs' first dimension is the batch; its rows become the
 *   items of one online task on the interactive queue, and their outputs are stacked back along it.
 * The health endpoints (`/v2/health/live|ready`) are served with the other probes. Errors here take the
 * protocol's shape, `{ "error": "<message>" }`: the one documented exception to the house error shape.
 */
export function kserveRoutes(deps: RouteDeps): Router {
  const { models, predict, idempotency, metrics, config } = deps;
  const router = Router();

  const resolve = (req: Request) => resolveServable(models, nameParam(req), versionParam(req));

  router.get('/v2', (_req, res) => {
    res.json(SERVER);
  });

  router.get([MODEL, VERSIONED], async (req, res) => {
    res.json(metadata(await resolve(req)));
  });

  router.get([`${MODEL}/ready`, `${VERSIONED}/ready`], async (req, res) => {
    try {
      const model = await models.resolve(nameParam(req), versionParam(req));
      res.json({ name: model.name, ready: true });
    } catch (err) {
      // The protocol says a model that is not ready answers 4xx: 400 for one that exists but cannot load.
      if (!(err instanceof ModelLoadError)) throw err;
      res
        .status(400)
        .json({ error: `model '${nameParam(req)}' is not ready: it cannot be loaded` } satisfies KServeErrorResponse);
    }
  });

  router.post([`${MODEL}/infer`, `${VERSIONED}/infer`], deps.workLimit, async (req, res) => {
    requireJson(req);
    const body = parseOrThrow(KServeInferRequest, req.body, 'inference request');
    const model = await resolve(req);
    const signature = clientSignature(model.config);
    const items = toItems(model, signature.inputs, body);
    const wanted = pickOutputs(signature.outputs, body);
    const version = versionParam(req);
    const { taskId, replayed } = await startTaskOnce(req, idempotency, () => {
      metrics.predictionRequests.inc({ source: 'kserve' }, items.length);
      return predict.start({ model: model.name, version, items }, { tenant: req.tenant, source: 'kserve' });
    });
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    const timeoutMs = Math.min(config.PREDICT_TIMEOUT_MS, config.PREDICT_MAX_TIMEOUT_MS);
    const results = await awaitTask(predict, taskId, timeoutMs, res, () => metrics.predictionTimeouts.inc());
    const response: KServeInferResponse = {
      model_name: model.name,
      model_version: String(results[0]?.version ?? model.version),
      id: body.id ?? taskId,
      outputs: wanted.map((spec) => stack(model, spec, results)),
    };
    res.json(response);
  });

  // Any other /v2 path: 404 in the protocol's shape (the health endpoints are served before this router).
  router.all(['/v2', '/v2/{*rest}'], (req) => {
    throw new NotFoundError(`no route ${req.method} ${req.path}`);
  });
  router.use(kserveErrorHandler(deps.log));
  return router;
}

function nameParam(req: Request): string {
  return String(req.params.name);
}

function versionParam(req: Request): number | undefined {
  const raw = req.params.version as string | undefined;
  if (raw === undefined) return undefined;
  if (!/^[1-9]\d{0,8}$/.test(raw))
    throw new InvalidRequestError(`model version must be a positive integer, got '${raw}'`);
  return Number(raw);
}

function tensorMetadata(t: TensorSignature): KServeTensorMetadata {
  return { name: t.name, datatype: DATATYPE[t.dtype]!, shape: [-1, ...t.shape] };
}

function metadata(model: ResolvedModel): KServeModelMetadata {
  const { inputs, outputs } = clientSignature(model.config);
  return {
    name: model.name,
    versions: model.versions.map(String),
    platform: PLATFORM,
    inputs: inputs.map(tensorMetadata),
    outputs: outputs.map(tensorMetadata),
  };
}

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * Splits the request's tensors along their first dimension into one item per row, in the /v1 item form
 * (`{ <input>: values }`, or `{ text }` for a text model), and checks every item against the model with the
 * validator the API and the activity share, so a bad row is refused before anything starts.
 */
function toItems(model: ResolvedModel, specs: TensorSignature[], body: KServeInferRequest): ItemInputs[] {
  const bad = (message: string): never => {
    throw new InvalidRequestError(message);
  };
  const seen = new Set<string>();
  for (const input of body.inputs) {
    if (seen.has(input.name)) bad(`input '${input.name}' is given twice`);
    seen.add(input.name);
    if (!specs.some((s) => s.name === input.name)) {
      bad(`model '${model.name}' has no input '${input.name}' (inputs: ${specs.map((s) => s.name).join(', ')})`);
    }
  }
  let rows: number | undefined;
  const columns = specs.map((spec) => {
    const input = body.inputs.find((i) => i.name === spec.name) ?? bad(`missing input '${spec.name}'`);
    const datatype = DATATYPE[spec.dtype]!;
    if (input.datatype !== datatype) bad(`input '${spec.name}': datatype ${input.datatype}, expected ${datatype}`);
    const [batch, ...dims] = input.shape as [number, ...number[]];
    if (rows !== undefined && batch !== rows)
      bad(`input '${spec.name}': batch dimension ${batch}, other inputs have ${rows}`);
    rows = batch;
    const flat = input.data.flat(Infinity);
    if (flat.length !== product(input.shape)) {
      bad(
        `input '${spec.name}': shape [${input.shape.join(', ')}] holds ${product(input.shape)} values, data has ${flat.length}`,
      );
    }
    if (spec.dtype === TEXT_DTYPE && product(dims) !== 1)
      bad(`input '${spec.name}': one string per row, shape [batch] or [batch, 1]`);
    return { spec, dims, flat };
  });
  if (!rows) bad('the batch dimension is 0: nothing to infer');
  if (rows! > model.config.maxBatchSize)
    bad(`batch dimension ${rows} exceeds model '${model.name}' maxBatchSize ${model.config.maxBatchSize}`);
  return Array.from({ length: rows! }, (_, row) => {
    const item: ItemInputs = {};
    for (const { spec, dims, flat } of columns) {
      const per = product(dims);
      const values = flat.slice(row * per, (row + 1) * per);
      item[spec.name] = spec.shape.length === 0 ? values[0] : nest(values, dims);
    }
    try {
      checkItemInputs(model.config, item);
    } catch (err) {
      if (err instanceof InvalidRequestError) bad(`row ${row}: ${err.message}`);
      throw err;
    }
    return item;
  });
}

/** Row-major values shaped into nested arrays of `dims` (the item form input validation checks dims in). */
function nest(values: unknown[], dims: number[]): unknown[] {
  if (dims.length <= 1) return values;
  const per = product(dims.slice(1));
  return Array.from({ length: dims[0]! }, (_, i) => nest(values.slice(i * per, (i + 1) * per), dims.slice(1)));
}

/** The outputs the request asks for (all when it names none); an unknown name is 400. */
function pickOutputs(outputs: TensorSignature[], body: KServeInferRequest): TensorSignature[] {
  if (!body.outputs || body.outputs.length === 0) return outputs;
  return body.outputs.map(
    ({ name }) =>
      outputs.find((o) => o.name === name) ??
      (() => {
        throw new InvalidRequestError(`no output '${name}' (outputs: ${outputs.map((o) => o.name).join(', ')})`);
      })(),
  );
}

/** One output's values for one item, flat: classifier scores come back as `probabilities`, vectors as `embedding`. */
function itemOutput(model: ResolvedModel, name: string, result: ItemResult): number[] {
  const post = model.config.postprocess;
  const value =
    post?.type === 'classification' && name === post.scores
      ? result.probabilities
      : post?.type === 'embedding' && name === EMBEDDING_OUTPUT
        ? result.embedding
        : result.outputs[name];
  if (value === undefined) throw new Error(`model '${model.name}' returned no output '${name}'`);
  return (Array.isArray(value) ? value.flat(Infinity) : [value]) as number[];
}

/** Stacks the items' values of one output along a new first (batch) dimension, row-major and flat. */
function stack(
  model: ResolvedModel,
  spec: TensorSignature,
  results: ItemResult[],
): KServeInferResponse['outputs'][number] {
  const rows = results.map((r) => itemOutput(model, spec.name, r));
  const per = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== per)) throw new Error(`output '${spec.name}' differs in size between items`);
  const fixed = product(spec.shape.filter((d) => d !== -1));
  const dims = spec.shape.map((d) => (d === -1 ? per / fixed : d));
  return { name: spec.name, shape: [results.length, ...dims], datatype: DATATYPE[spec.dtype]!, data: rows.flat() };
}

/**
 * Errors of the /v2 routes in the protocol's shape, `{ "error": "<message>" }`, with the status the house
 * error middleware would give them (and Retry-After where it would set it); a 504 also names the task. The
 * router uses it for its own errors; mounted on `/v2` in the app before the house handler, it also covers what
 * fails before the router runs (no API key, a body that is not JSON or too large).
 */
export function kserveErrorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const send = (status: number, body: KServeErrorResponse) => res.status(status).json(body);
    if (err instanceof AppError) {
      if (err.status === 503) res.setHeader('Retry-After', '5');
      if (err instanceof RateLimitedError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      return send(err.status, { error: err.message, ...(err instanceof TimeoutError ? err.extra : {}) });
    }
    // body-parser's errors carry an HTTP status and a type
    const status = typeof err?.status === 'number' ? (err.status as number) : undefined;
    if (err?.type === 'entity.parse.failed') return send(400, { error: 'request body is not valid JSON' });
    if (status !== undefined && status >= 400 && status < 500)
      return send(status, { error: err.expose ? err.message : 'bad request' });
    log.error({ err, requestId: req.requestId, method: req.method, path: req.path }, 'request failed');
    send(500, { error: `internal error (request id ${req.requestId})` });
  };
}
