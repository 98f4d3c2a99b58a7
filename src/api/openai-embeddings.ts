import type { ItemInputs, ItemResult } from '../contracts/batch.js';
import type { EmbeddingsRequest, EmbeddingsResponse } from '../contracts/openai.js';
import { InvalidRequestError } from '../errors.js';
import { checkItemInputs, TEXT_FIELD } from '../runtime/input-validation.js';
import type { ResolvedModel } from '../runtime/model-repository.js';

// OpenAI's embeddings request and response over batchline's text items: one item per text, whichever way the
// request comes (POST /openai/v1/embeddings, or a batch line to /v1/embeddings).

/** The vector length of an embedding model (the last dimension of its pooled output), or undefined if it is none. */
export function embeddingDimension(model: ResolvedModel): number | undefined {
  const post = model.config.postprocess;
  if (post?.type !== 'embedding') return undefined;
  const dims = model.config.outputs.find((o) => o.name === post.output)?.shape;
  return dims?.[dims.length - 1];
}

/**
 * The items of an embeddings request, one `{ text }` per input, each checked against the model. Throws
 * InvalidRequestError naming the field (`input`, `input[3]`, `model`, `dimensions`); `at` prefixes the paths.
 */
export function embeddingItems(model: ResolvedModel, request: EmbeddingsRequest): ItemInputs[] {
  const dimension = embeddingDimension(model);
  if (dimension === undefined) {
    throw new InvalidRequestError(`model '${model.name}' is not an embedding model`, [
      { path: ['model'], message: 'not an embedding model' },
    ]);
  }
  if (request.dimensions !== undefined && request.dimensions !== dimension) {
    const message = `model '${model.name}' embeds in ${dimension} dimensions; it cannot be shortened to ${request.dimensions}`;
    throw new InvalidRequestError(message, [{ path: ['dimensions'], message }]);
  }
  const texts = typeof request.input === 'string' ? [request.input] : request.input;
  return texts.map((text, i) => {
    const inputs = { [TEXT_FIELD]: text };
    try {
      checkItemInputs(model.config, inputs);
    } catch (err) {
      if (!(err instanceof InvalidRequestError)) throw err;
      const path = typeof request.input === 'string' ? ['input'] : ['input', i];
      throw new InvalidRequestError(`${path.join('.')}: ${err.message}`, [{ path, message: err.message }]);
    }
    return inputs;
  });
}

/** An embedding as OpenAI writes it: numbers, or (`base64`) the little-endian float32 bytes in base64. */
export function encodeEmbedding(vector: number[], format: 'float' | 'base64'): number[] | string {
  if (format === 'float') return vector;
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString('base64');
}

/** OpenAI's embeddings response for the results of one request's items, in input order. */
export function embeddingsResponse(
  model: string,
  results: ItemResult[],
  format: 'float' | 'base64',
): EmbeddingsResponse {
  const tokens = results.reduce((sum, r) => sum + (r.tokens ?? 0), 0);
  return {
    object: 'list',
    data: results.map((r, index) => ({
      object: 'embedding',
      index,
      embedding: encodeEmbedding(r.embedding ?? [], format),
    })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}
