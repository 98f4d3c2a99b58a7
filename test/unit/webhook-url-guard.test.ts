// The SSRF guard of webhook deliveries: which URLs registration refuses, and the connect-time lookup that refuses a
// host name resolving to a non-public address.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  checkLiteralHost,
  checkWebhookUrl,
  guardedLookup,
  WebhookAddressRefusedError,
} from '../../src/webhooks/url-guard.js';

describe('checkWebhookUrl (registration)', () => {
  const refused: [string, RegExp][] = [
    ['http://127.0.0.1:8080/hook', /loopback/],
    ['http://127.9.9.9/', /loopback/],
    ['http://[::1]/hook', /loopback/],
    ['http://10.0.0.5/hook', /private/],
    ['http://172.16.0.1/', /private/],
    ['http://172.31.255.254/', /private/],
    ['http://192.168.1.10/', /private/],
    ['http://169.254.169.254/latest/meta-data/', /linkLocal/],
    ['http://[fd00::1]/', /uniqueLocal/],
    ['http://[fe80::1]/', /linkLocal/],
    ['http://[::ffff:127.0.0.1]/', /loopback/], // IPv4-mapped IPv6 is judged by its IPv4 address
    ['http://[::ffff:10.0.0.1]/', /private/],
    ['http://0.0.0.0/', /unspecified/],
    ['http://100.64.0.1/', /carrierGradeNat/],
    ['http://224.0.0.1/', /multicast/],
    ['http://255.255.255.255/', /broadcast/],
    ['http://240.0.0.1/', /reserved/],
    ['http://[64:ff9b::a00:1]/', /rfc6052/], // NAT64 of 10.0.0.1
    ['http://2130706433/', /loopback/], // 127.0.0.1 written as one number: the URL parser normalises it
    ['http://0x7f.1/', /loopback/],
    ['http://localhost:3000/', /loopback name/],
    ['http://api.localhost/', /loopback name/],
    ['ftp://example.com/hook', /only http and https/],
    ['file:///etc/passwd', /only http and https/],
    ['https://user:secret@example.com/hook', /credentials/],
    ['https://user@example.com/hook', /credentials/],
    ['not a url', /not a valid URL/],
  ];
  for (const [url, reason] of refused) {
    test(`refuses ${url}`, () => {
      const message = checkWebhookUrl(url, []);
      assert.ok(message, `${url} was accepted`);
      assert.match(message, reason);
    });
  }

  const accepted = [
    'https://93.184.216.34/hook',
    'http://172.32.0.1/', // just outside 172.16.0.0/12
    'https://[2606:4700:4700::1111]/hook',
    'https://hooks.example.com/batchline?x=1', // a name: judged after DNS resolution, at each connection
  ];
  for (const url of accepted) {
    test(`accepts ${url}`, () => assert.equal(checkWebhookUrl(url, []), undefined));
  }

  test('an allowlisted CIDR permits its addresses, and only those', () => {
    const allow = ['127.0.0.0/8'];
    assert.equal(checkWebhookUrl('http://127.0.0.1:9000/hook', allow), undefined);
    assert.equal(checkWebhookUrl('http://[::ffff:127.0.0.1]/hook', allow), undefined);
    assert.equal(checkWebhookUrl('http://localhost:9000/hook', allow), undefined);
    assert.match(checkWebhookUrl('http://10.0.0.1/', allow) ?? '', /private/);
    assert.match(checkWebhookUrl('http://[::1]/', allow) ?? '', /loopback/);
    assert.equal(checkWebhookUrl('http://[::1]/', ['::1/128']), undefined);
    assert.equal(checkWebhookUrl('http://10.1.2.3/', ['10.1.0.0/16']), undefined);
  });

  test('checkLiteralHost refuses a literal in a refused range and ignores names', () => {
    assert.throws(() => checkLiteralHost('169.254.169.254', []), WebhookAddressRefusedError);
    assert.throws(() => checkLiteralHost('::1', []), WebhookAddressRefusedError);
    checkLiteralHost('127.0.0.1', ['127.0.0.0/8']);
    checkLiteralHost('example.com', []);
  });
});

describe('guardedLookup (connect time)', () => {
  let server: http.Server;
  let port: number;
  let connections = 0;

  before(async () => {
    server = http.createServer((_req, res) => res.end('ok'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const get = (allowedCidrs: readonly string[]) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(`http://localhost:${port}/`, {
        lookup: guardedLookup(allowedCidrs),
        family: 4,
        agent: false,
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });

  test('a name that resolves to loopback is refused before any connection is made', async () => {
    const before = connections;
    await assert.rejects(get([]), (err: unknown) => {
      assert.ok(err instanceof WebhookAddressRefusedError, `expected WebhookAddressRefusedError, got ${String(err)}`);
      assert.equal(err.host, 'localhost');
      assert.equal(err.range, 'loopback');
      assert.match(err.message, /WEBHOOK_ALLOWED_CIDRS/);
      return true;
    });
    assert.equal(connections, before, 'the receiver saw a connection');
  });

  test('the same name connects when the allowlist covers every address it resolves to', async () => {
    assert.equal(await get(['127.0.0.0/8', '::1/128']), 200);
  });

  test('every resolved address is checked, in both callback forms', async () => {
    const lookup = guardedLookup([]);
    const refused = await new Promise<unknown>((resolve) => lookup('localhost', { all: false }, (err) => resolve(err)));
    assert.ok(refused instanceof WebhookAddressRefusedError);
    const addresses = await new Promise<unknown>((resolve, reject) =>
      guardedLookup(['127.0.0.0/8', '::1/128'])('localhost', { all: true }, (err, all) =>
        err ? reject(err) : resolve(all),
      ),
    );
    assert.ok(Array.isArray(addresses) && addresses.length > 0, 'all: true answers with the address list');
  });
});
