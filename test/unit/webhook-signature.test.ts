// Our Standard Webhooks signatures, checked by the maintained `standardwebhooks` library a receiver would use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { WebhookRegistration } from '../../src/contracts/webhook.js';
import { newWebhookSecret, signatureHeaders, signWebhook } from '../../src/webhooks/signature.js';

const body = JSON.stringify({
  type: 'item.succeeded',
  timestamp: '2025-01-01T00:00:00.000Z',
  data: { index: 3, id: 'a' },
});

test('a signed delivery verifies with the standardwebhooks library', () => {
  const secret = newWebhookSecret();
  const headers = signatureHeaders(secret, 'msg_b1_42', body);
  assert.equal(headers['webhook-id'], 'msg_b1_42');
  assert.match(headers['webhook-timestamp'], /^\d{10}$/);
  assert.match(headers['webhook-signature'], /^v1,[A-Za-z0-9+/]{43}=$/);
  const payload = new Webhook(secret).verify(body, { ...headers });
  assert.deepEqual(payload, JSON.parse(body));
});

test('a tampered body, id or timestamp is rejected', () => {
  const secret = newWebhookSecret();
  const headers = signatureHeaders(secret, 'msg_b1_42', body);
  const wh = new Webhook(secret);
  assert.throws(() => wh.verify(body.replace('"index":3', '"index":4'), { ...headers }), WebhookVerificationError);
  assert.throws(() => wh.verify(body, { ...headers, 'webhook-id': 'msg_b1_43' }), WebhookVerificationError);
  const earlier = String(Number(headers['webhook-timestamp']) - 1);
  assert.throws(() => wh.verify(body, { ...headers, 'webhook-timestamp': earlier }), WebhookVerificationError);
});

test('a signature made with another secret is rejected', () => {
  const headers = signatureHeaders(newWebhookSecret(), 'msg_b1_42', body);
  assert.throws(() => new Webhook(newWebhookSecret()).verify(body, { ...headers }), WebhookVerificationError);
});

test('our signature equals the library signing the same message (the spec example secret)', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const at = new Date(1_614_265_330_000);
  assert.equal(
    signWebhook(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1_614_265_330, body),
    new Webhook(secret).sign('msg_p5jXN8AQM9LWM0D4loKWxJek', at, body),
  );
});

test('generated secrets are whsec_ + base64 of 32 random bytes, accepted by the registration schema', () => {
  const a = newWebhookSecret();
  assert.match(a, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(Buffer.from(a.slice('whsec_'.length), 'base64').length, 32);
  assert.notEqual(a, newWebhookSecret());
  assert.ok(WebhookRegistration.safeParse({ url: 'https://example.com/h', secret: a }).success);
});
