import { OnTimeout } from '../../contracts/online-work.js';
import {
  EmbeddingsRequest,
  EmbeddingsResponse,
  MAX_SYNC_EMBEDDING_CHARS,
  MAX_SYNC_EMBEDDING_INPUTS,
  OPENAI_BASE,
} from '../../contracts/openai.js';
import { InvalidRequestError } from '../../errors.js';
import { fingerprint } from '../idempotency.js';
import { defaultSyncTimeoutMs, runSyncTask } from '../online-tasks.js';
import { embeddingItems, embeddingsResponse } from '../openai-embeddings.js';
import { resolveRequestedModel } from '../requested-model.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

/** OpenAI's embeddings endpoint: one online task of the request's texts, on the interactive queue. */
export const openAIEmbeddingRoutes: ApiRoute[] = [
  defineRoute({
    method: 'post',
    path: `${OPENAI_BASE}/embeddings`,
    operationId: 'openaiCreateEmbeddings',
    summary: 'Embed texts (OpenAI-compatible)',
    description:
      'Runs as one online prediction (admission control and PREDICT_TIMEOUT_MS apply: 503 with Retry-After when ' +
      'overloaded, 504 past the timeout, after which the task is dropped).',
    tag: 'OpenAI-compatible',
    createsWork: true,
    request: { body: { schema: EmbeddingsRequest, what: 'embeddings request' } },
    responses: { 200: json(EmbeddingsResponse, 'The embeddings, in input order.') },
    errors: [503, 504],
    handler: async ({ body, idempotencyKey }, { req, res, deps }) => {
      const model = await resolveRequestedModel(deps.models, body.model);
      const items = embeddingItems(model, body);
      const chars = items.reduce((n, i) => n + String(i.text).length, 0);
      if (items.length > MAX_SYNC_EMBEDDING_INPUTS || chars > MAX_SYNC_EMBEDDING_CHARS) {
        const message =
          `a synchronous embeddings request takes at most ${MAX_SYNC_EMBEDDING_INPUTS} texts and ` +
          `${MAX_SYNC_EMBEDDING_CHARS} characters in all (this one: ${items.length} texts, ${chars} characters); ` +
          'the batch API (POST /openai/v1/batches) takes any number';
        throw new InvalidRequestError(message, [{ path: ['input'], message }]);
      }
      const { results } = await runSyncTask(deps, req, res, {
        source: 'openai',
        timeoutMs: defaultSyncTimeoutMs(deps.config),
        onTimeout: OnTimeout.cancel, // nobody can read the result of an OpenAI request later
        work: { key: idempotencyKey, fingerprint: fingerprint(req, req.bodyHash!) },
        start: (deadline) => {
          deps.metrics.predictionRequests.inc({ source: 'openai' }, items.length);
          return deps.predict.start(
            { model: model.name, version: model.version, items },
            { tenant: req.tenant, source: 'openai' },
            deadline,
          );
        },
      });
      res.json(embeddingsResponse(model.name, results, body.encoding_format));
    },
  }),
];
