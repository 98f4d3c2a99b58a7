// One delivery attempt against a local receiver: how each answer is classified, what is sent, and that redirects
// are never followed. Loopback is allowlisted here; the guard itself is tested in webhook-url-guard.test.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DeliveryError, deliveryError } from '../../src/contracts/webhook.js';
import { parseRetryAfter, postWebhook, type DeliveryOutcome } from '../../src/webhooks/deliver.js';
import { freePort } from '../helpers/temporal.js';

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
    const failed = { kind: 'failed', error: DeliveryError.failed };
    assert.deepEqual(await post('/error'), { ...failed, detail: 'HTTP 500', status: 500 });
    assert.deepEqual(await post('/busy'), { ...failed, detail: 'HTTP 503', status: 503, retryAfterMs: 7000 });
  });

  test('a redirect is a failure and is not followed', async () => {
    const before = seen.filter((s) => s.path === '/ok').length;
    const outcome = await post('/redirect');
    assert.equal(outcome.kind, 'failed');
    assert.match(outcome.kind === 'failed' ? outcome.detail : '', /302.*not followed/);
    assert.equal(seen.filter((s) => s.path === '/ok').length, before, 'the redirect target was requested');
  });

  test('a receiver that never answers fails at the deadline', async () => {
    const started = Date.now();
    const outcome = await post('/silent', 300);
    assert.equal(outcome.kind, 'failed');
    assert.match(outcome.kind === 'failed' ? outcome.detail : '', /no response within 300 ms/);
    assert.ok(Date.now() - started < 5000);
  });

  test('without the allowlist the same receiver is refused and sees nothing', async () => {
    const count = seen.length;
    const outcome = await postWebhook({ url: `${base}/ok`, body: '{}', headers: {}, allowedCidrs: [] });
    assert.equal(outcome.kind, 'refused');
    assert.equal(seen.length, count);
  });

  // What a tenant reads about a failed delivery must not tell one network answer from another, or the allowed
  // ranges become a port scanner: every way an attempt fails carries one fixed phrase, the detail is for the log.
  test('a failed attempt tells the tenant one fixed phrase; the status or network error is in the detail', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/hook`; // nothing listens there: connection refused
    const port = new URL(base).port;
    const cases: [string, Promise<DeliveryOutcome>, RegExp][] = [
      ['HTTP 500', post('/error'), /HTTP 500/],
      ['HTTP 503 with Retry-After', post('/busy'), /HTTP 503/],
      ['a redirect', post('/redirect'), /HTTP 302/],
      ['no answer', post('/silent', 300), /no response within 300 ms/],
      [
        'connection refused',
        postWebhook({ url: closed, body: '{}', headers: {}, allowedCidrs: ['127.0.0.0/8'] }),
        /ECONNREFUSED/,
      ],
    ];
    for (const [what, sent, detail] of cases) {
      const outcome = await sent;
      assert.equal(outcome.kind, 'failed', what);
      if (outcome.kind !== 'failed') continue;
      assert.equal(outcome.error, DeliveryError.failed, `${what}: the tenant's phrase`);
      assert.match(outcome.detail, detail, `${what}: the log's detail`);
    }
    const guarded = [`${base}/ok`, 'http://localhost:9/hook', 'http://[::ffff:10.0.0.1]/hook', 'ftp://example.com/'];
    for (const url of guarded) {
      const outcome = await postWebhook({ url, body: '{}', headers: {}, allowedCidrs: [] });
      assert.equal(outcome.kind, 'refused', url);
      if (outcome.kind !== 'refused') continue;
      assert.equal(outcome.error, DeliveryError.refused, `${url}: the tenant's phrase`);
      assert.notEqual(outcome.detail, outcome.error, `${url}: the log says which address or rule`);
    }
    for (const phrase of Object.values(DeliveryError)) {
      assert.doesNotMatch(phrase, new RegExp(`\\d{3}|${port}|ECONN|127\\.|10\\.`), 'no status, port or address');
    }
  });
});

describe('deliveryError', () => {
  test('a recorded phrase is shown as itself; any other text (older records, a timeout) as a failed delivery', () => {
    assert.equal(deliveryError(DeliveryError.refused), DeliveryError.refused);
    assert.equal(deliveryError(DeliveryError.failed), DeliveryError.failed);
    for (const older of ['HTTP 500', 'connect ECONNREFUSED 10.0.0.5:22', "webhook host 'x' resolves to 10.0.0.5", '']) {
      assert.equal(deliveryError(older), DeliveryError.failed, older);
    }
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
