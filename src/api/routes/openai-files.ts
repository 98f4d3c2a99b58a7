import type { Request, Response } from 'express';
import busboy from 'busboy';
import { queryNumber } from '../../contracts/batch-queries.js';
import { newHexId } from '../../contracts/ids.js';
import {
  DeletedFile,
  FileList,
  FilePath,
  ListFilesQuery,
  OPENAI_BASE,
  OpenAIFile,
  UploadedFileId,
  UploadFileForm,
} from '../../contracts/openai.js';
import { z } from 'zod';
import { InvalidRequestError, NotFoundError } from '../../errors.js';
import type { StoredFile } from '../../stores/openai-store.js';
import type { RouteDeps } from '../deps.js';
import { batchFile, type BatchFile } from '../openai-files.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

const Offset = z
  .object({
    offset: queryNumber(z.number().int().min(0)).optional().meta({
      description:
        "Beyond OpenAI: start at this byte of the file (a reader that has the first `offset` bytes reads on from there; a batch's output and error files grow while it runs).",
    }),
  })
  .strict();

/** OpenAI's Files API (purpose `batch`), tenant-scoped like batches. */
export const openAIFileRoutes: ApiRoute[] = [
  defineRoute({
    method: 'post',
    path: `${OPENAI_BASE}/files`,
    operationId: 'openaiUploadFile',
    summary: 'Upload a batch input file (OpenAI-compatible)',
    description:
      'A multipart form with `purpose=batch` and the JSONL `file`, streamed into the item store (at most MAX_FILE_BYTES). ' +
      'Lines are checked when a batch is created from the file.',
    tag: 'OpenAI-compatible',
    request: {
      stream: {
        mediaTypes: ['multipart/form-data'],
        line: UploadFileForm,
        description: 'The form: `purpose` and `file`.',
      },
    },
    responses: { 200: json(OpenAIFile, 'The stored file.') },
    errors: [400, 413, 503],
    handler: async (_input, { req, res, deps }) => {
      const file = await receiveUpload(req, res, deps);
      res.json(fileObject(file));
    },
  }),
  defineRoute({
    method: 'get',
    path: `${OPENAI_BASE}/files`,
    operationId: 'openaiListFiles',
    summary: 'List uploaded files (OpenAI-compatible)',
    description: "The tenant's uploaded files; a batch's output and error files are reached through the batch.",
    tag: 'OpenAI-compatible',
    request: { query: ListFilesQuery },
    responses: { 200: json(FileList, 'One page of files.') },
    errors: [503],
    handler: async ({ query }, { req, res, deps }) => {
      const page =
        query.purpose === 'batch_output'
          ? { files: [], hasMore: false }
          : await deps.openai.listFiles(req.tenant, { after: query.after, limit: query.limit, order: query.order });
      const data = page.files.map(fileObject);
      res.json({
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: page.hasMore,
      } satisfies z.infer<typeof FileList>);
    },
  }),
  defineRoute({
    method: 'get',
    path: `${OPENAI_BASE}/files/:fileId`,
    operationId: 'openaiGetFile',
    summary: 'A file (OpenAI-compatible)',
    tag: 'OpenAI-compatible',
    request: { params: FilePath },
    responses: { 200: json(OpenAIFile, 'The file.') },
    errors: [404, 503],
    handler: async ({ params: { fileId } }, { req, res, deps }) => {
      const found = await findFile(deps, fileId, req.tenant);
      res.json('record' in found ? await found.describe() : fileObject(found));
    },
  }),
  defineRoute({
    method: 'get',
    path: `${OPENAI_BASE}/files/:fileId/content`,
    operationId: 'openaiFileContent',
    summary: "A file's content (OpenAI-compatible)",
    description:
      "An uploaded file's bytes, or a batch's output or error file: one JSONL line per finished request, in the order " +
      'they finished, readable while the batch runs (`Batchline-File-Complete: false` until it has ended).',
    tag: 'OpenAI-compatible',
    request: { params: FilePath, query: Offset },
    responses: {
      200: {
        description: 'The bytes from `offset`.',
        content: { 'application/octet-stream': z.string().meta({ format: 'binary' }) },
      },
    },
    errors: [404, 503],
    handler: async ({ params: { fileId }, query: { offset = 0 } }, { req, res, deps }) => {
      const found = await findFile(deps, fileId, req.tenant);
      res.setHeader('Content-Type', 'application/octet-stream');
      if ('record' in found) {
        res.setHeader('Batchline-File-Complete', String(await found.complete()));
        await writeFrom(res, found.lines(), offset);
        return;
      }
      await writeFrom(res, deps.openai.readFile(found.id), offset);
    },
  }),
  defineRoute({
    method: 'delete',
    path: `${OPENAI_BASE}/files/:fileId`,
    operationId: 'openaiDeleteFile',
    summary: 'Delete an uploaded file (OpenAI-compatible)',
    description: "A batch's output and error files go with the batch (RETENTION_DAYS) and cannot be deleted alone.",
    tag: 'OpenAI-compatible',
    request: { params: FilePath },
    responses: { 200: json(DeletedFile, 'Deleted.') },
    errors: [400, 404, 503],
    handler: async ({ params: { fileId } }, { req, res, deps }) => {
      if (!UploadedFileId.safeParse(fileId).success) {
        await findFile(deps, fileId, req.tenant); // 404 when there is no such batch
        throw new InvalidRequestError(`file '${fileId}' is a batch's file: it goes with its batch`, [
          { path: ['fileId'], message: "a batch's output or error file cannot be deleted alone" },
        ]);
      }
      if (!(await deps.openai.deleteFile(fileId, req.tenant))) throw new NotFoundError(`file '${fileId}' not found`);
      res.json({ id: fileId, object: 'file', deleted: true } satisfies z.infer<typeof DeletedFile>);
    },
  }),
];

function fileObject(file: StoredFile): OpenAIFile {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: Math.floor(file.createdAt / 1000),
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    expires_at: null,
  };
}

/** The tenant's uploaded file, or a batch's output or error file; NotFoundError when neither. */
async function findFile(deps: RouteDeps, fileId: string, tenant: string): Promise<StoredFile | BatchFile> {
  const found = UploadedFileId.safeParse(fileId).success
    ? await deps.openai.getFile(fileId, tenant)
    : await batchFile(deps, fileId, tenant);
  if (!found) throw new NotFoundError(`file '${fileId}' not found`);
  return found;
}

/** Writes a stream of chunks from byte `offset` on. */
async function writeFrom(res: Response, chunks: AsyncIterable<Buffer | string>, offset: number): Promise<void> {
  let skip = offset;
  for await (const piece of chunks) {
    let bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
    if (skip > 0) {
      if (bytes.length <= skip) {
        skip -= bytes.length;
        continue;
      }
      bytes = bytes.subarray(skip);
      skip = 0;
    }
    if (!res.write(bytes)) await drainedOrClosed(res);
    if (res.destroyed) return; // the reader left: stop reading the file
  }
  res.end();
}

/**
 * Reads a multipart upload: its `purpose` field and one `file` part, streamed into the store as it arrives (the
 * parts may come in either order: a file whose purpose turns out wrong is deleted again).
 */
async function receiveUpload(req: Request, res: Response, deps: RouteDeps): Promise<StoredFile> {
  const maxBytes = deps.config.MAX_FILE_BYTES;
  let form: busboy.Busboy;
  try {
    form = busboy({
      headers: req.headers,
      limits: { files: 1, fileSize: maxBytes + 1, fields: 8, fieldSize: 1024, parts: 16 },
    });
  } catch (err) {
    // A Content-Type without a boundary: busboy refuses it before reading anything.
    throw new InvalidRequestError(`the multipart body cannot be read: ${(err as Error).message}`);
  }
  const fields = new Map<string, string>();
  let stored: Promise<StoredFile> | undefined;
  let fileStream: (NodeJS.ReadableStream & { destroy(err?: Error): void }) | undefined;
  let problem: Error | undefined;
  // The store failing (too large, storage) or the client leaving ends the wait at once: busboy would never finish a
  // form whose file stream the store stopped reading.
  let cutShort!: (err: Error) => void;
  const failed = new Promise<never>((_, reject) => (cutShort = reject));
  failed.catch(() => undefined); // raced below
  req.on('close', () => {
    if (!req.complete) cutShort(new InvalidRequestError('the upload was cut off before its end'));
  });
  const finished = new Promise<void>((resolve, reject) => {
    form.on('field', (name, value) => fields.set(name, value));
    form.on('file', (name, stream, info) => {
      if (name !== 'file' || stored) {
        problem ??= new InvalidRequestError(`unexpected file part '${name}': send one part named 'file'`, [
          { path: [name], message: 'unexpected file part' },
        ]);
        stream.resume();
        return;
      }
      const file = {
        id: `file-${newHexId()}`,
        tenant: req.tenant,
        purpose: 'batch' as const,
        filename: info.filename || 'upload.jsonl',
        createdAt: Date.now(),
      };
      fileStream = stream;
      stored = deps.openai.putFile(file, stream, maxBytes);
      stored.catch((err: Error) => cutShort(err));
    });
    form.on('partsLimit', () => (problem ??= new InvalidRequestError('too many parts in the form')));
    form.on('filesLimit', () => (problem ??= new InvalidRequestError("send one part named 'file'")));
    form.on('close', () => resolve());
    form.on('error', (err: Error) =>
      reject(new InvalidRequestError(`the multipart body cannot be read: ${err.message}`)),
    );
  });
  req.pipe(form);
  try {
    await Promise.race([finished, failed]);
  } catch (err) {
    // Stop reading: the rest of the body is not wanted (the answer closes the connection), and a file stream still
    // being stored fails, so its upload is removed.
    req.unpipe(form);
    fileStream?.destroy(new Error('the upload ended early'));
    form.destroy();
    if (!req.complete) res.setHeader('Connection', 'close');
    const file = await stored?.catch(() => undefined);
    if (file) await deps.openai.deleteFile(file.id, file.tenant).catch(() => undefined);
    throw err;
  }
  const purpose = fields.get('purpose');
  if (!stored || problem || purpose !== 'batch') {
    await stored?.then((f) => deps.openai.deleteFile(f.id, f.tenant)).catch(() => undefined);
    if (problem) throw problem;
    if (!stored)
      throw new InvalidRequestError("no file: send the JSONL as a part named 'file'", [
        { path: ['file'], message: 'required' },
      ]);
    throw new InvalidRequestError(`purpose must be 'batch' (got ${purpose === undefined ? 'none' : `'${purpose}'`})`, [
      { path: ['purpose'], message: "expected 'batch'" },
    ]);
  }
  return stored;
}

/** Resolves when a response can take more, or when its connection is gone (it never drains then). */
function drainedOrClosed(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
