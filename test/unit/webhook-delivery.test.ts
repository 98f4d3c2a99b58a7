// One delivery attempt against a local receiver: how each answer is classified, what is sent, and that redirects
// are never followed. Loopback is allowlisted here; the guard itself is tested in webhook-url-guard.test.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseRetryAfter, postWebhook } from '../../src/webhooks/deliver.js';

interface Seen {
  path: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('postWebhook', () => {
  let server: http.Server;
  let base: string;
  const seen: Seen[] = [];
  const routes: Record<string, (res: http.ServerResponse) => void> = {
    '/ok': (res) => res.writeHead(204).end(),
    '/gone': (res) => res.writeHead(410).end('unsubscribed'),
    '/busy': (res) => res.writeHead(503, { 'retry-after': '7' }).end(),
    '/error': (res) => res.writeHead(500).end('boom'),
    '/redirect': (res) => res.writeHead(302, { location: '/ok' }).end(),
    '/silent': () => undefined, // never answers
  };

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ path: req.url ?? '', method: req.method ?? '', headers: req.headers, body });
        routes[req.url ?? '']?.(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const post = (path: string, timeoutMs?: number) =>
    postWebhook({
      url: base + path,
      body: '{"type":"item.succeeded"}',
      headers: { 'webhook-id': 'msg_x_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,abc' },
      allowedCidrs: ['127.0.0.0/8'],
      ...(timeoutMs ? { timeoutMs } : {}),
    });

  test('a 2xx is delivered; the request is a JSON POST with the signature headers and our user agent', async () => {
    assert.deepEqual(await post('/ok'), { kind: 'delivered', status: 204 });
    const req = seen.find((s) => s.path === '/ok')!;
    assert.equal(req.method, 'POST');
    assert.equal(req.body, '{"type":"item.succeeded"}');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['user-agent'], 'batchline-webhooks');
    assert.equal(req.headers['webhook-id'], 'msg_x_1');
    assert.equal(req.headers['webhook-signature'], 'v1,abc');
  });

  test('410 is gone, 5xx failed, Retry-After carried', async () => {
    assert.deepEqual(await post('/gone'), { kind: 'gone', status: 410 });
    assert.deepEqual(await post('/error'), { kind: 'failed', reason: 'HTTP 500', status: 500 });
    assert.deepEqual(await post('/busy'), { kind: 'failed', reason: 'HTTP 503', status: 503, retryAfterMs: 7000 });
  });

  test('a redirect is a failure and is not followed', async () => {
    const before = seen.filter((s) => s.path === '/ok').length;
    const outcome = await post('/redirect');
    assert.equal(outcome.kind, 'failed');
    assert.match(outcome.kind === 'failed' ? outcome.reason : '', /302.*not followed/);
    assert.equal(seen.filter((s) => s.path === '/ok').length, before, 'the redirect target was requested');
  });

  test('a receiver that never answers fails at the deadline', async () => {
    const started = Date.now();
    const outcome = await post('/silent', 300);
    assert.equal(outcome.kind, 'failed');
    assert.match(outcome.kind === 'failed' ? outcome.reason : '', /no response within 300 ms/);
    assert.ok(Date.now() - started < 5000);
  });

  test('without the allowlist the same receiver is refused and sees nothing', async () => {
    const count = seen.length;
    const outcome = await postWebhook({ url: `${base}/ok`, body: '{}', headers: {}, allowedCidrs: [] });
    assert.equal(outcome.kind, 'refused');
    assert.equal(seen.length, count);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  test('delay-seconds, HTTP-date, the cap, and garbage', () => {
    assert.equal(parseRetryAfter('2', now), 2000);
    assert.equal(parseRetryAfter(' 120 ', now), 120_000);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now), 0, 'a date in the past: retry now');
    assert.equal(parseRetryAfter('86400', now), 3_600_000, 'capped at 1 h');
    assert.equal(parseRetryAfter('86400', now, 5000), 5000);
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-5', now), undefined);
  });
});
