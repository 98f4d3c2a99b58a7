// Long responses (SSE, NDJSON results) never buffer without bound: a client that stops reading is disconnected,
// a client that reads gets everything. Real HTTP on loopback; only the tuning is small.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import express from 'express';
import { StreamWriter } from '../../src/api/stream-writer.js';
import { waitFor } from '../helpers/temporal.js';

const CHUNK = 'x'.repeat(16 * 1024) + '\n';

/** A server whose one route writes `total` bytes (Infinity: forever) through a StreamWriter. */
async function serve(total: number, chunk = CHUNK) {
  const seen = { written: 0, maxBuffered: 0, disconnected: false, done: false };
  const app = express();
  app.get('/stream', async (req, res) => {
    const writer = new StreamWriter(req, res, {
      progressEveryMs: 1000,
      keepAliveMs: 15_000,
      maxBufferedBytes: 256 * 1024,
      drainTimeoutMs: 500,
    });
    res.status(200).type('text/plain');
    while (seen.written < total) {
      const ok = await writer.write(chunk);
      seen.maxBuffered = Math.max(seen.maxBuffered, res.writableLength);
      if (!ok) {
        seen.disconnected = true;
        return;
      }
      seen.written += chunk.length;
    }
    seen.done = true;
    res.end();
  });
  const server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, seen, port: (server.address() as net.AddressInfo).port };
}

test('a client that stops reading is disconnected, with the buffer kept bounded', async () => {
  const { server, seen, port } = await serve(Infinity);
  const socket = net.connect(port, '127.0.0.1');
  socket.write(`GET /stream HTTP/1.1\r\nHost: x\r\n\r\n`);
  socket.pause(); // never read
  try {
    await waitFor('the server to give up on the client', () => seen.disconnected, 15_000, 20);
    assert.ok(
      seen.maxBuffered <= 256 * 1024 + CHUNK.length,
      `buffered at most the limit plus one write (saw ${seen.maxBuffered})`,
    );
    assert.ok(seen.written < 64 * 1024 * 1024, 'stopped long before writing without end');
  } finally {
    socket.destroy();
    server.close();
  }
});

test('a client that reads gets the whole stream, however long', async () => {
  const total = 8 * 1024 * 1024;
  const { server, seen, port } = await serve(total);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/stream`);
    const body = await res.text();
    assert.equal(body.length, Math.ceil(total / CHUNK.length) * CHUNK.length);
    assert.equal(seen.done, true);
    assert.equal(seen.disconnected, false);
  } finally {
    server.close();
  }
});

test('one write larger than maxBufferedBytes reaches a reading client whole (a page of embedding events)', async () => {
  const page = 'y'.repeat(1024 * 1024 - 1) + '\n'; // 4x the 256 KiB limit
  const { server, seen, port } = await serve(3 * page.length, page);
  try {
    const body = await (await fetch(`http://127.0.0.1:${port}/stream`)).text();
    assert.equal(body.length, 3 * page.length);
    assert.equal(seen.disconnected, false);
  } finally {
    server.close();
  }
});
