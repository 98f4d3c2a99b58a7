import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { ItemInputs } from '../contracts/batch.js';
import {
  EmbeddingsRequest,
  OpenAIBatchEndpoint,
  OpenAIBatchLine,
  PredictLineBody,
  type OpenAIBatchError,
} from '../contracts/openai.js';
import { AppError, InvalidRequestError } from '../errors.js';
import type { ResolvedModel } from '../runtime/model-repository.js';
import { checkItemInputs } from '../runtime/input-validation.js';
import { itemRow, type ItemRow } from '../stores/item-store.js';
import { embeddingItems } from './openai-embeddings.js';
import { requestItemId } from './openai-output.js';
import { resolveRequestedModel } from './requested-model.js';
import type { RouteDeps } from './deps.js';

/** Validation reports at most this many problems of an input file (OpenAI's errors list is short too). */
export const MAX_INPUT_ERRORS = 100;

/** What a valid input file became: staged items of one model. */
export interface StagedInput {
  model: ResolvedModel;
  lines: number;
  items: number;
  multiInput: boolean;
  encodingFormat: 'float' | 'base64';
}

export type InputValidation = { ok: true; staged: StagedInput } | { ok: false; errors: OpenAIBatchError[] };

/**
 * Reads a batch's input file line by line and stages its requests as items of batch `batchId` (invisible until
 * committed): one item per request, or per text of an embeddings request with several. Every line must name the
 * batch's endpoint, a unique custom_id and the same model (and, for embeddings, the same encoding_format) and a
 * body the model can take. Any problem fails the whole file, as OpenAI does: up to MAX_INPUT_ERRORS problems are
 * reported with their line numbers, and the staged items are removed.
 */
export async function stageInputFile(
  deps: RouteDeps,
  fileId: string,
  endpoint: OpenAIBatchEndpoint,
  batchId: string,
): Promise<InputValidation> {
  const store = deps.batches.store;
  const errors: OpenAIBatchError[] = [];
  const fail = (line: number | null, code: string, message: string, param: string | null = null) => {
    errors.push({ code, message, param, line });
  };
  const seen = new Set<string>();
  let model: ResolvedModel | undefined;
  let version: number | undefined;
  let encodingFormat: 'float' | 'base64' | undefined;
  let pending: ItemRow[] = [];
  let items = 0;
  let staged = 0;
  let lines = 0;
  let multiInput = false;
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    await store.appendRows(batchId, staged, batch);
    staged += batch.length;
  };
  const lineReader = createInterface({ input: Readable.from(deps.openai.readFile(fileId)), crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const read of lineReader) {
      lineNo++;
      const text = lineNo === 1 && read.startsWith('\uFEFF') ? read.slice(1) : read; // a byte order mark
      if (text.trim() === '') continue;
      if (errors.length >= MAX_INPUT_ERRORS) break;
      lines++;
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        fail(lineNo, 'invalid_json_line', `line ${lineNo} is not valid JSON`);
        continue;
      }
      const parsed = OpenAIBatchLine.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const param = issue.path.join('.') || null;
        fail(lineNo, 'invalid_request', `line ${lineNo}: ${param ? `${param}: ` : ''}${issue.message}`, param);
        continue;
      }
      const line = parsed.data;
      if (line.url !== endpoint) {
        fail(
          lineNo,
          'mismatched_url',
          `line ${lineNo}: url '${line.url}' is not the batch's endpoint ${endpoint}`,
          'url',
        );
        continue;
      }
      if (seen.has(line.custom_id)) {
        fail(lineNo, 'duplicate_custom_id', `line ${lineNo}: custom_id '${line.custom_id}' is used twice`, 'custom_id');
        continue;
      }
      seen.add(line.custom_id);
      const body = bodyOf(endpoint, line.body);
      if (typeof body === 'string') {
        fail(lineNo, 'invalid_body', `line ${lineNo}: ${body}`, 'body');
        continue;
      }
      if (model === undefined) {
        try {
          model = await resolveRequestedModel(deps.models, body.model, body.version);
        } catch (err) {
          if (!(err instanceof InvalidRequestError)) throw err;
          fail(lineNo, 'model_not_found', `line ${lineNo}: ${err.message}`, 'body.model');
          break; // every later line is checked against this model: nothing more to learn
        }
        version = body.version;
        encodingFormat = body.encodingFormat;
      } else if (body.model !== model.name || body.version !== version) {
        const named = `${body.model}${body.version !== undefined ? ` version ${body.version}` : ''}`;
        const first = `${model.name}${version !== undefined ? ` version ${version}` : ''}`;
        fail(lineNo, 'mixed_models', `line ${lineNo}: model ${named}; a batch runs one model (${first})`, 'body.model');
        continue;
      } else if (body.encodingFormat !== encodingFormat) {
        const message = `line ${lineNo}: encoding_format ${body.encodingFormat}; every line of a batch asks for the same (${encodingFormat})`;
        fail(lineNo, 'mixed_encoding_format', message, 'body.encoding_format');
        continue;
      }
      let inputs: ItemInputs[];
      try {
        inputs = body.items(model);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        fail(lineNo, 'invalid_body', `line ${lineNo}: ${err.message}`, 'body');
        continue;
      }
      if (items + inputs.length > deps.config.MAX_BATCH_ITEMS) {
        fail(lineNo, 'too_many_items', `a batch holds at most ${deps.config.MAX_BATCH_ITEMS} items (MAX_BATCH_ITEMS)`);
        break;
      }
      if (inputs.length > 1) multiInput = true;
      items += inputs.length;
      if (errors.length > 0) continue; // the file fails: its later lines are checked, not staged
      inputs.forEach((itemInputs, j) => {
        pending.push(itemRow({ id: requestItemId(line.custom_id, j, inputs.length), inputs: itemInputs }));
      });
      if (pending.length >= store.appendSize) await flush();
    }
    if (errors.length === 0 && lines === 0) fail(null, 'empty_file', 'the input file holds no requests');
    if (errors.length > 0) {
      await store.deleteBatch(batchId);
      return { ok: false, errors };
    }
    await flush();
  } catch (err) {
    await store.deleteBatch(batchId).catch(() => undefined);
    throw err;
  } finally {
    lineReader.close();
  }
  return { ok: true, staged: { model: model!, lines, items, multiInput, encodingFormat: encodingFormat ?? 'float' } };
}

/** A line's body, checked for its endpoint: its model, version and how it becomes items; or what is wrong. */
interface LineBody {
  model: string;
  version: number | undefined;
  encodingFormat: 'float' | 'base64';
  items: (model: ResolvedModel) => ItemInputs[];
}

function bodyOf(endpoint: OpenAIBatchEndpoint, body: Record<string, unknown>): LineBody | string {
  const schema = endpoint === OpenAIBatchEndpoint.embeddings ? EmbeddingsRequest : PredictLineBody;
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return `body.${issue.path.join('.')}: ${issue.message}`.replace('body.: ', 'body: ');
  }
  if (endpoint === OpenAIBatchEndpoint.embeddings) {
    const request = parsed.data as EmbeddingsRequest;
    return {
      model: request.model,
      version: undefined,
      encodingFormat: request.encoding_format,
      items: (model) => embeddingItems(model, request),
    };
  }
  const request = parsed.data as PredictLineBody;
  return {
    model: request.model,
    version: request.version,
    encodingFormat: 'float',
    items: (model) => {
      checkItemInputs(model.config, request.inputs);
      return [request.inputs];
    },
  };
}
