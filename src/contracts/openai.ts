import { z } from 'zod';
import { BatchMetadata, ItemInputs, ModelName } from './batch.js';
import { queryNumber } from './batch-queries.js';
import { WebhookEventKind, WebhookRegistration } from './webhook.js';
import { ITEM_ID, MAX_ITEM_ID_LENGTH } from './limits.js';

// ---------------------------------------------------------------------------------------------------------------
// The OpenAI-compatible Files, Batch and Embeddings API under /openai/v1: OpenAI's shapes, field names (snake_case)
// and status names, so that the official SDKs work unchanged. docs/openai.md lists every difference.
// ---------------------------------------------------------------------------------------------------------------

/** The base path of the OpenAI-compatible API: an SDK's `baseURL` is `http://host:port/openai/v1`. */
export const OPENAI_BASE = '/openai/v1';

/** The request urls a batch's lines may name: OpenAI's embeddings, and batchline's own item inputs. */
export const OpenAIBatchEndpoint = { embeddings: '/v1/embeddings', predict: '/v1/predict' } as const;
export type OpenAIBatchEndpoint = (typeof OpenAIBatchEndpoint)[keyof typeof OpenAIBatchEndpoint];

/** `file-` plus a hex id: an uploaded file. */
export const UploadedFileId = z.string().regex(/^file-[0-9a-f]{20}$/, 'not a file id');
/** A batch's output or error file: `file-batch_<batch hex>-output` or `-errors`. */
export const BatchFileId = z
  .string()
  .regex(/^file-batch_[0-9a-f]{20}-(output|errors)$/, 'not a batch output or error file id');
export const FileId = z.union([UploadedFileId, BatchFileId]).meta({ description: 'A file id.' });
export const OpenAIBatchId = z.string().regex(/^batch_[0-9a-f]{20}$/, 'not a batch id (batch_ and 20 hex digits)');

export const outputFileId = (batchHex: string): string => `file-batch_${batchHex}-output`;
export const errorFileId = (batchHex: string): string => `file-batch_${batchHex}-errors`;
export const openAIBatchId = (batchHex: string): string => `batch_${batchHex}`;

/** Purposes of files: `batch` is uploaded; `batch_output` is what a batch writes (its output and error files). */
export const FilePurpose = z.enum(['batch', 'batch_output']);

export const OpenAIFile = z
  .object({
    id: z.string(),
    object: z.literal('file'),
    bytes: z.number().int(),
    created_at: z.number().int(),
    filename: z.string(),
    purpose: FilePurpose,
    status: z.enum(['processed']),
    expires_at: z.number().int().nullable(),
  })
  .meta({ id: 'OpenAIFile' });
export type OpenAIFile = z.infer<typeof OpenAIFile>;

const Limit = queryNumber(z.number().int().min(1).max(10_000));

export const ListFilesQuery = z
  .object({
    purpose: FilePurpose.optional(),
    limit: Limit.default(10_000),
    order: z.enum(['asc', 'desc']).default('desc'),
    after: UploadedFileId.optional(),
  })
  .strict();

export const FileList = z
  .object({
    object: z.literal('list'),
    data: z.array(OpenAIFile),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  })
  .meta({ id: 'OpenAIFileList' });

export const DeletedFile = z
  .object({ id: z.string(), object: z.literal('file'), deleted: z.boolean() })
  .meta({ id: 'OpenAIDeletedFile' });

/** The multipart form of `POST /files`, as documented: the file's bytes and its purpose. */
export const UploadFileForm = z
  .object({
    file: z.string().meta({ format: 'binary', description: 'The JSONL file: one request per line.' }),
    purpose: z.literal('batch'),
  })
  .meta({ id: 'OpenAIUploadFileForm' });

export const FilePath = z.object({ fileId: FileId });

export const CreateOpenAIBatchRequest = z
  .object({
    input_file_id: UploadedFileId,
    endpoint: z.enum(OpenAIBatchEndpoint),
    completion_window: z.literal('24h'),
    metadata: BatchMetadata.nullable().optional(),
    /**
     * Beyond OpenAI: signed webhooks of the batch's items and end, as `webhook` on POST /v1/batches (Standard
     * Webhooks; a generated secret is returned once, in this response).
     */
    batchline_webhook: WebhookRegistration.optional(),
    /** Accepted and ignored: batchline keeps output files as long as the batch (RETENTION_DAYS). */
    output_expires_after: z.object({ anchor: z.literal('created_at'), seconds: z.number().int() }).optional(),
  })
  .strict()
  .meta({ id: 'OpenAICreateBatchRequest' });
export type CreateOpenAIBatchRequest = z.infer<typeof CreateOpenAIBatchRequest>;

/** OpenAI's batch statuses. */
export const OpenAIBatchStatus = z.enum([
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
]);
export type OpenAIBatchStatus = z.infer<typeof OpenAIBatchStatus>;

/** One problem with the input file, found at validation (the batch is then `failed`). */
export const OpenAIBatchError = z.object({
  code: z.string(),
  message: z.string(),
  param: z.string().nullable(),
  line: z.number().int().nullable(),
});
export type OpenAIBatchError = z.infer<typeof OpenAIBatchError>;

const Timestamp = z.number().int().nullable();

export const OpenAIBatch = z
  .object({
    id: z.string(),
    object: z.literal('batch'),
    endpoint: z.string(),
    model: z.string().nullable(),
    errors: z.object({ object: z.literal('list'), data: z.array(OpenAIBatchError) }).nullable(),
    input_file_id: z.string(),
    completion_window: z.string(),
    status: OpenAIBatchStatus,
    output_file_id: z.string().nullable(),
    error_file_id: z.string().nullable(),
    created_at: z.number().int(),
    in_progress_at: Timestamp,
    expires_at: Timestamp,
    finalizing_at: Timestamp,
    completed_at: Timestamp,
    failed_at: Timestamp,
    expired_at: Timestamp,
    cancelling_at: Timestamp,
    cancelled_at: Timestamp,
    request_counts: z.object({ total: z.number().int(), completed: z.number().int(), failed: z.number().int() }),
    metadata: z.record(z.string(), z.string()).nullable(),
    /** Beyond OpenAI: the batchline batch underneath (GET /v1/batches/{id}, SSE, webhooks, retry-failed). */
    batchline_batch_id: z.string().nullable(),
    /** Beyond OpenAI: the registered webhook; its secret only in the response that created the batch. */
    batchline_webhook: z
      .object({ url: z.string(), events: z.array(z.enum(WebhookEventKind)), secret: z.string().optional() })
      .optional(),
  })
  .meta({ id: 'OpenAIBatch' });
export type OpenAIBatch = z.infer<typeof OpenAIBatch>;

export const BatchPath = z.object({ batchId: OpenAIBatchId });

export const ListBatchesQuery = z
  .object({ limit: queryNumber(z.number().int().min(1).max(100)).default(20), after: OpenAIBatchId.optional() })
  .strict();

export const OpenAIBatchList = z
  .object({
    object: z.literal('list'),
    data: z.array(OpenAIBatch),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  })
  .meta({ id: 'OpenAIBatchList' });

/** A custom_id: what batchline's item ids allow (it becomes the item's id). */
export const CustomId = z
  .string()
  .min(1)
  .max(MAX_ITEM_ID_LENGTH)
  .regex(ITEM_ID, 'a custom_id holds no control characters');

/** One line of a batch's input file. */
export const OpenAIBatchLine = z
  .object({
    custom_id: CustomId,
    method: z.literal('POST'),
    url: z.string(),
    body: z.record(z.string(), z.unknown()),
  })
  .strict();

/** The most texts one embeddings request embeds (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;
/**
 * The most texts, and characters in all, that the synchronous `POST /embeddings` takes: its texts and vectors travel
 * through one online task's workflow history, whose payloads Temporal caps at 2 MB. A batch line may hold
 * MAX_EMBEDDING_INPUTS: each of its texts is an item of its own.
 */
export const MAX_SYNC_EMBEDDING_INPUTS = 128;
export const MAX_SYNC_EMBEDDING_CHARS = 512 * 1024;

/** `POST /embeddings`, and the body of a batch line to /v1/embeddings. Token-array inputs are not supported. */
export const EmbeddingsRequest = z
  .object({
    model: ModelName,
    input: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(MAX_EMBEDDING_INPUTS)]),
    encoding_format: z.enum(['float', 'base64']).default('float'),
    /** Only the model's own dimension is accepted: the bundled models are not trained to be truncated. */
    dimensions: z.number().int().positive().optional(),
    user: z.string().optional(),
  })
  .strict()
  .meta({ id: 'OpenAIEmbeddingsRequest' });
export type EmbeddingsRequest = z.infer<typeof EmbeddingsRequest>;

export const EmbeddingsResponse = z
  .object({
    object: z.literal('list'),
    data: z.array(
      z.object({
        object: z.literal('embedding'),
        index: z.number().int(),
        embedding: z.union([z.array(z.number()), z.string()]),
      }),
    ),
    model: z.string(),
    usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
  })
  .meta({ id: 'OpenAIEmbeddingsResponse' });
export type EmbeddingsResponse = z.infer<typeof EmbeddingsResponse>;

/** The body of a batch line to /v1/predict: one item of batchline's own models, as POST /v1/predict/async takes. */
export const PredictLineBody = z
  .object({ model: ModelName, version: z.number().int().positive().optional(), inputs: ItemInputs })
  .strict();
export type PredictLineBody = z.infer<typeof PredictLineBody>;
