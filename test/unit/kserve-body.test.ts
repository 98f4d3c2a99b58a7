// The infer route's own body reader: the size limit before and after decompression (413), the encodings it takes
// (gzip, deflate, none; others 415), a corrupt compressed body (400), and the hash the idempotency check uses.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import type { Request } from 'express';
import { readInferBody } from '../../src/api/kserve-body.js';
import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../../src/errors.js';

/** A request as the reader sees it: a stream of `chunks` and its headers. */
function fakeRequest(chunks: Buffer[], headers: Record<string, string> = {}): Request & Readable {
  const stream = Readable.from(chunks, { objectMode: false });
  return Object.assign(stream, { header: (name: string) => headers[name.toLowerCase()] }) as never;
}

const LIMIT = 1024;

describe('the infer body reader', () => {
  test('reads the whole body across chunks and sets its sha256 as the body hash', async () => {
    const body = Buffer.from('{"inputs":[]}');
    const req = fakeRequest([body.subarray(0, 5), body.subarray(5)]);
    assert.deepEqual(await readInferBody(req, LIMIT), body);
    assert.equal(req.bodyHash, createHash('sha256').update(body).digest('hex'));
  });

  test('gzip and deflate bodies are inflated', async () => {
    const body = Buffer.from('{"inputs":[1,2,3]}');
    for (const [encoding, packed] of [
      ['gzip', zlib.gzipSync(body)],
      ['deflate', zlib.deflateSync(body)],
    ] as const) {
      assert.deepEqual(await readInferBody(fakeRequest([packed], { 'content-encoding': encoding }), LIMIT), body);
    }
  });

  test('over the limit is 413: by Content-Length, by the bytes read, and after inflating', async () => {
    const big = Buffer.alloc(LIMIT + 1, 0x20);
    const cases: [string, Request & Readable][] = [
      ['Content-Length', fakeRequest([big], { 'content-length': String(big.length) })],
      ['chunks without a length', fakeRequest([big.subarray(0, 600), big.subarray(600)])],
      ['a gzip body that inflates past it', fakeRequest([zlib.gzipSync(big)], { 'content-encoding': 'gzip' })],
    ];
    for (const [what, req] of cases) {
      await assert.rejects(readInferBody(req, LIMIT), PayloadTooLargeError, what);
    }
  });

  test('an unknown encoding is 415, a corrupt gzip body 400', async () => {
    await assert.rejects(
      readInferBody(fakeRequest([Buffer.from('x')], { 'content-encoding': 'br' }), LIMIT),
      UnsupportedMediaTypeError,
    );
    await assert.rejects(
      readInferBody(fakeRequest([Buffer.from('not gzip')], { 'content-encoding': 'gzip' }), LIMIT),
      InvalidRequestError,
    );
  });
});
