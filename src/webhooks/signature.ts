import { createHmac, randomBytes } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): receivers verify our deliveries with any library
 * that implements the spec, so the scheme must match it byte for byte. A secret is `whsec_` + base64 of the
 * HMAC key; the signed content is `${webhook-id}.${webhook-timestamp}.${body}`.
 */

const SECRET_PREFIX = 'whsec_';

/** The headers that make a delivery verifiable. */
export interface WebhookSignatureHeaders {
  /** The message id: the same on every retry of one message, so receivers can deduplicate. */
  'webhook-id': string;
  /** Unix seconds of this attempt, so receivers can refuse replays of old deliveries. */
  'webhook-timestamp': string;
  /** `v1,<base64 HMAC-SHA256>`; the spec allows several, space-separated, during secret rotation. */
  'webhook-signature': string;
}

/** A new signing secret: `whsec_` and base64 of 32 random bytes (what the API generates when none is given). */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** `v1,<signature>` of one message at one timestamp (unix seconds). */
export function signWebhook(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
  if (key.length === 0) throw new Error('the webhook secret is empty');
  const mac = createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The signature headers for one attempt at `now` (each attempt is signed afresh with its own timestamp). */
export function signatureHeaders(
  secret: string,
  messageId: string,
  body: string,
  now: Date = new Date(),
): WebhookSignatureHeaders {
  const timestamp = Math.floor(now.getTime() / 1000);
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(secret, messageId, timestamp, body),
  };
}
