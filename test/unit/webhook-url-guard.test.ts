// The SSRF guard of webhook deliveries: which URLs registration refuses, and the connect-time lookup that refuses a
// host name resolving to a non-public address.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { LookupAddress } from 'node:dns';
import {
  checkLiteralHost,
  checkWebhookUrl,
  guardedLookup,
  WebhookAddressRefusedError,
  type ResolveAll,
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
    // IPv6 forms that reach, or may reach, an internal IPv4 address
    ['http://[::127.0.0.1]/', /notGlobalUnicast/], // IPv4-compatible loopback: ipaddr.js calls it unicast
    ['http://[::a9fe:a9fe]/', /notGlobalUnicast/], // IPv4-compatible 169.254.169.254
    ['http://[::ffff:169.254.169.254]/', /linkLocal/],
    ['http://[::ffff:0:a00:1]/', /rfc6145/], // SIIT's IPv4-translated 10.0.0.1
    ['http://[64:ff9b::a00:1]/', /private address \(IPv4 10\.0\.0\.1\)/], // NAT64 of 10.0.0.1
    ['http://[64:ff9b::7f00:1]/', /loopback address \(IPv4 127\.0\.0\.1\)/],
    ['http://[64:ff9b::a9fe:a9fe]/', /linkLocal address \(IPv4 169\.254\.169\.254\)/],
    ['http://[64:ff9b:1::a00:1]/', /rfc6052/], // local-use NAT64: where the IPv4 address sits is the operator's
    ['http://[2002:7f00:1::1]/', /6to4/], // 6to4 of 127.0.0.1
    ['http://[2002:a00:1::1]/', /6to4/], // 6to4 of 10.0.0.1
    ['http://[2002:5db8:d822::1]/', /6to4/], // 6to4 of a public address: deprecated, refused all the same
    ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', /teredo/],
    ['http://[2001:2::1]/', /benchmarking/],
    ['http://[2001:db8::1]/', /reserved/], // documentation
    ['http://[3fff::1]/', /reserved/], // documentation (RFC 9637)
    ['http://[2620:4f:8000::1]/', /as112v6/],
    // IPv6 outside 2000::/3
    ['http://[::]/', /unspecified/],
    ['http://[100::1]/', /discard/],
    ['http://[fec0::1]/', /deprecatedSiteLocal/],
    ['http://[ff02::1]/', /multicast/],
    ['http://[5f00::1]/', /segmentRouting/],
    ['http://[4000::1]/', /notGlobalUnicast/], // unassigned: ipaddr.js calls it unicast
    ['http://[::1:2:3:4]/', /notGlobalUnicast/],
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
    'https://[2a00:1450:4001:82a::200e]/hook',
    'https://[64:ff9b::5db8:d822]/hook', // NAT64 of 93.184.216.34 (DNS64 hands these out on IPv6-only networks)
    'https://[::ffff:93.184.216.34]/hook',
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

  test('an allowlisted CIDR permits the IPv6 forms of its addresses, and an allowlisted IPv6 range itself', () => {
    assert.equal(checkWebhookUrl('http://[64:ff9b::a01:203]/', ['10.1.0.0/16']), undefined, 'NAT64 of 10.1.2.3');
    assert.match(checkWebhookUrl('http://[64:ff9b::a02:203]/', ['10.1.0.0/16']) ?? '', /private/);
    assert.equal(checkWebhookUrl('http://[64:ff9b:1::a00:1]/', ['64:ff9b:1::/48']), undefined);
    assert.equal(checkWebhookUrl('http://[fd12:3456::1]/', ['fd12:3456::/32']), undefined);
    assert.match(checkWebhookUrl('http://[::127.0.0.1]/', ['127.0.0.0/8']) ?? '', /notGlobalUnicast/);
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

  /** A resolver answering `addresses` for every name, as the DNS would. */
  const answering =
    (...addresses: string[]): ResolveAll =>
    (_hostname, _options, callback) =>
      callback(
        null,
        addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })),
      );

  const lookup = (resolve: ResolveAll, allowedCidrs: readonly string[] = []) =>
    new Promise<LookupAddress[]>((resolved, rejected) =>
      guardedLookup(allowedCidrs, resolve)('receiver.test', { all: true }, (err, all) =>
        err ? rejected(err) : resolved(all as LookupAddress[]),
      ),
    );

  test('a name resolving to an IPv6 form of an internal address is refused as the literal is', async () => {
    const refused: [string[], string, string, string?][] = [
      [['2606:4700::1111', '::7f00:1'], '::7f00:1', 'notGlobalUnicast'], // one internal record is enough
      [['::ffff:a00:5'], '::ffff:a00:5', 'private', '10.0.0.5'],
      [['64:ff9b::a9fe:a9fe'], '64:ff9b::a9fe:a9fe', 'linkLocal', '169.254.169.254'],
      [['2002:a9fe:a9fe::1'], '2002:a9fe:a9fe::1', '6to4'],
      [['2001:0:4136:e378:8000:63bf:3fff:fdd2'], '2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
      [['fd00::1'], 'fd00::1', 'uniqueLocal'],
    ];
    for (const [addresses, address, range, embedded] of refused) {
      await assert.rejects(lookup(answering(...addresses)), (err: unknown) => {
        assert.ok(err instanceof WebhookAddressRefusedError, `${addresses}: got ${String(err)}`);
        assert.deepEqual(
          { host: err.host, address: err.address, range: err.range, embedded: err.embedded },
          { host: 'receiver.test', address, range, embedded },
        );
        return true;
      });
    }
  });

  test('a name resolving only to public addresses, or to allowlisted ones, gets every address back', async () => {
    const addresses = ['93.184.216.34', '2606:4700::1111', '64:ff9b::5db8:d822'];
    assert.deepEqual(
      (await lookup(answering(...addresses))).map((a) => a.address),
      addresses,
    );
    assert.equal((await lookup(answering('64:ff9b::a00:5'), ['10.0.0.0/8']))[0]!.address, '64:ff9b::a00:5');
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
