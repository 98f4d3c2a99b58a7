import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import type { Request } from 'express';
import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.js';

// The raw body of an infer request, which the route reads itself: Triton's clients send JSON without a
// Content-Type (or as application/octet-stream), and with the binary tensor data extension the body is JSON
// followed by bytes, which no JSON parser takes whole.

/** The media types an infer body may declare; a body without Content-Type is taken too. */
export const INFER_MEDIA_TYPES = ['application/json', 'application/octet-stream'] as const;

/** Reads the whole body, at most `limit` bytes after decompression (413 past it), and sets `req.bodyHash`. */
export async function readInferBody(req: Request, limit: number): Promise<Buffer> {
  const encoding = (req.header('content-encoding') ?? 'identity').trim().toLowerCase();
  if (!['identity', 'gzip', 'deflate'].includes(encoding)) {
    throw new UnsupportedMediaTypeError(`Content-Encoding ${encoding} is not supported (gzip, deflate or none)`);
  }
  // The app's JSON parser leaves these routes' bodies alone (app.ts); one that read it first would leave none here.
  if (req.readableEnded) throw new Error('the infer body was read before its route');
  const declared = Number(req.header('content-length'));
  if (encoding === 'identity' && declared > limit) {
    req.resume(); // discarded, so the 413 can be read
    throw tooLarge(limit);
  }
  const raw = await readAtMost(req, limit);
  const body = encoding === 'identity' ? raw : inflate(raw, encoding, limit);
  req.bodyHash = createHash('sha256').update(body).digest('hex');
  return body;
}

/** The body's bytes; past `limit` it rejects with 413 and reads the rest into nothing, so the answer is read. */
function readAtMost(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      over = true;
      chunks.length = 0;
      reject(tooLarge(limit));
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks, size));
    });
    req.on('error', reject);
  });
}

function inflate(raw: Buffer, encoding: string, limit: number): Buffer {
  try {
    const options = { maxOutputLength: limit };
    return encoding === 'gzip' ? zlib.gunzipSync(raw, options) : zlib.inflateSync(raw, options);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit);
    throw new InvalidRequestError(`the body is not valid ${encoding} data`);
  }
}

const tooLarge = (limit: number) => new PayloadTooLargeError(`request body larger than ${limit} bytes`);
