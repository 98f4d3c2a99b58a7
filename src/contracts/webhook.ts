import { z } from 'zod';
import { MAX_WEBHOOK_URL_LENGTH, WEBHOOK_URL_SCHEME } from './limits.js';

/** What a webhook can be told about: each finished item, and/or the batch's end. */
export const WebhookEventKind = { item: 'item', batch: 'batch' } as const;
export type WebhookEventKind = (typeof WebhookEventKind)[keyof typeof WebhookEventKind];

/** A Standard Webhooks signing secret: `whsec_` and base64 of 24 to 64 random bytes. */
const SECRET = /^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/;

/**
 * A webhook callback URL: an absolute http(s) URL without credentials, of bounded length. Each rule is a keyword of
 * the OpenAPI document (`format: uri`, `pattern`, `minLength`, `maxLength`) but the last, which the description
 * states. Whether its host may be reached is decided again at every connection, after DNS resolution (see
 * src/webhooks/url-guard.ts).
 */
export const WebhookUrl = z
  .string()
  .min(1, { message: 'a webhook URL is required', abort: true })
  .max(MAX_WEBHOOK_URL_LENGTH, { abort: true })
  .regex(WEBHOOK_URL_SCHEME, { message: 'only http and https URLs', abort: true })
  .check(z.url({ protocol: /^https?$/, error: 'not a valid URL' }))
  .refine(
    (u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password),
    'credentials are not allowed in the URL',
  )
  .meta({
    description:
      'An absolute `http://` or `https://` URL without credentials. Hosts in private, loopback and link-local ranges are refused unless WEBHOOK_ALLOWED_CIDRS allows them.',
  });

/** A batch's callback registration. */
export const WebhookRegistration = z
  .object({
    url: WebhookUrl,
    /** Which events to deliver (default both). */
    events: z.array(z.enum(WebhookEventKind)).min(1).max(2).default([WebhookEventKind.item, WebhookEventKind.batch]),
    /** Signing secret (`whsec_...`); when omitted one is generated and returned once in the 202 response. */
    secret: z.string().regex(SECRET, 'expected whsec_ followed by base64 of 24-64 bytes').optional(),
  })
  .strict()
  .meta({ id: 'WebhookRegistration' });
export type WebhookRegistration = z.infer<typeof WebhookRegistration>;

/** A registration as stored: the secret is always set. */
export type StoredWebhook = Required<WebhookRegistration>;

/**
 * Why a delivery failed, as its batch's tenant is told: one fixed phrase per way, never the receiver's status or
 * the network error, which would turn the reachable ranges into a port scanner (the worker's log has the detail).
 * A refusal is told apart because it happens before any connection: the URL's host is, or resolves to, an
 * address deliveries may not reach.
 */
export const DeliveryError = {
  refused: 'delivery refused: the host is not an address deliveries may reach',
  failed: 'delivery failed: no 2xx answer',
} as const;
export type DeliveryError = (typeof DeliveryError)[keyof typeof DeliveryError];

/** The phrase a recorded error is shown as: itself when it is one, else the phrase of a failed delivery. */
export function deliveryError(recorded: string): DeliveryError {
  return Object.values(DeliveryError).find((phrase) => phrase === recorded) ?? DeliveryError.failed;
}

/** A delivery that exhausted its retries (or was refused for good), listed under its batch. */
export const FailedDelivery = z
  .object({
    messageId: z.string(),
    eventType: z.string(),
    attempts: z.number().int(),
    /** A DeliveryError phrase (the store may hold older text: responses show deliveryError() of it). */
    lastError: z.string().meta({ enum: Object.values(DeliveryError) }),
    failedAt: z.string(),
  })
  .meta({ id: 'FailedDelivery' });
export type FailedDelivery = z.infer<typeof FailedDelivery>;

/** Input of webhookWorkflow: the batch whose events it delivers (the URL and secret are in the item store). */
export interface WebhookWorkflowInput {
  batchId: string;
  /** Event log position already handed to deliveries (carried across continue-as-new). */
  afterSeq?: number;
  /** Set once the receiver answered 410 Gone: nothing more is delivered. */
  gone?: boolean;
}

/** Workflow id of a batch's webhook deliveries. */
export const webhookWorkflowId = (batchId: string): string => `batch-${batchId}/webhooks`;
