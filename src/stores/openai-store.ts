import type { OpenAIBatchEndpoint, OpenAIBatchError } from '../contracts/openai.js';
import { PayloadTooLargeError } from '../errors.js';

/** An uploaded file (purpose `batch`): its bytes are kept in chunks beside it. */
export interface StoredFile {
  id: string;
  tenant: string;
  purpose: 'batch';
  filename: string;
  bytes: number;
  /** Epoch ms. */
  createdAt: number;
}

/**
 * What the OpenAI-compatible API keeps about a batch beyond the batchline batch underneath (same id): the request
 * it was created with, what validation found in its input file, and when a cancel was asked for. A batch that
 * failed validation has no batchline batch.
 */
export interface OpenAIBatchRecord {
  /** The batchline batch's id; the OpenAI id is `batch_<id>`. */
  id: string;
  tenant: string;
  /** Epoch ms. */
  createdAt: number;
  endpoint: OpenAIBatchEndpoint;
  inputFileId: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  /** The one model every line names (null when validation failed before one was known). */
  model: string | null;
  /** Request lines in the input file. */
  lines: number;
  /** Whether some line embeds several texts (one item each): counts per request then come from the event log. */
  multiInput: boolean;
  /** How embeddings are written to the output file (every line of a batch asks for the same). */
  encodingFormat: 'float' | 'base64';
  /** Problems validation found; the batch is then failed and nothing ran. */
  errors?: OpenAIBatchError[];
  /** Epoch ms of the first cancel request. */
  cancellingAt?: number;
  /** The batch's webhook registration, without its secret. */
  webhook?: { url: string; events: ('item' | 'batch')[] };
}

export interface FilePage {
  files: StoredFile[];
  hasMore: boolean;
}

/**
 * Files and batches of the OpenAI-compatible API, in the item store's database (SQLite or PostgreSQL, tables of
 * migration 5), so that every API process sharing it sees the same. Files are tenant-scoped like batches: another
 * tenant's id reads as missing. An upload is invisible until all of it is stored.
 */
export interface OpenAIStore {
  /**
   * Stores a file read from `content`; rejects with PayloadTooLargeError past `maxBytes` (nothing is kept). The
   * chunks may be of any size: they are stored in chunks of up to FILE_CHUNK_BYTES.
   */
  putFile(file: Omit<StoredFile, 'bytes'>, content: AsyncIterable<Buffer>, maxBytes: number): Promise<StoredFile>;
  getFile(id: string, tenant: string): Promise<StoredFile | undefined>;
  /** A tenant's files by creation time (`desc`: newest first), after the file `after` (exclusive). */
  listFiles(tenant: string, page: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<FilePage>;
  /** A stored file's bytes, chunk by chunk, from the first. */
  readFile(id: string): AsyncIterable<Buffer>;
  /** Resolves whether the tenant's file existed (it is gone now). */
  deleteFile(id: string, tenant: string): Promise<boolean>;
  putBatch(record: OpenAIBatchRecord): Promise<void>;
  getBatch(id: string, tenant: string): Promise<OpenAIBatchRecord | undefined>;
  /** A tenant's batches, newest first, after the batch `after` (exclusive). */
  listBatches(tenant: string, page: { after?: string; limit: number }): Promise<OpenAIBatchRecord[]>;
  /** Removes a batch's record (one whose batchline batch could not start). */
  removeBatch(id: string): Promise<void>;
  /** Records the first cancel request's time; later ones keep it. */
  markCancelling(id: string, at: number): Promise<void>;
  close(): Promise<void>;
}

/** The columns of `files` both backends read, and a row's mapping (PostgreSQL returns BIGINTs as strings). */
export const FILE_COLUMNS = 'id, tenant, purpose, filename, bytes, created_at';

export interface FileRow {
  id: string;
  tenant: string;
  purpose: 'batch';
  filename: string;
  bytes: number | string;
  created_at: number | string;
}

export function toFile(row: FileRow): StoredFile {
  return {
    id: row.id,
    tenant: row.tenant,
    purpose: row.purpose,
    filename: row.filename,
    bytes: Number(row.bytes),
    createdAt: Number(row.created_at),
  };
}

/** The largest chunk a file is stored in. */
export const FILE_CHUNK_BYTES = 1024 * 1024;

/** Re-cuts a stream of buffers into chunks of FILE_CHUNK_BYTES (the last may be shorter), refusing past maxBytes. */
export async function* fileChunks(content: AsyncIterable<Buffer>, maxBytes: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let total = 0;
  for await (const piece of content) {
    total += piece.length;
    if (total > maxBytes) throw new PayloadTooLargeError(`a file holds at most ${maxBytes} bytes (MAX_FILE_BYTES)`);
    pending.push(piece);
    pendingBytes += piece.length;
    while (pendingBytes >= FILE_CHUNK_BYTES) {
      const all = Buffer.concat(pending, pendingBytes);
      yield all.subarray(0, FILE_CHUNK_BYTES);
      pending = [all.subarray(FILE_CHUNK_BYTES)];
      pendingBytes -= FILE_CHUNK_BYTES;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}
