import http from 'node:http';
import https from 'node:https';
import { DeliveryError } from '../contracts/webhook.js';
import { checkLiteralHost, checkUrlShape, guardedLookup, hostOf, WebhookAddressRefusedError } from './url-guard.js';

/**
 * How one delivery attempt ended, for the activity to map to a Temporal outcome. An attempt that did not deliver
 * carries `error`, all its tenant may be told, and `detail` (the address refused, the status, the network error)
 * for the worker's log only.
 */
export type DeliveryOutcome =
  /** A 2xx: the receiver has the message. */
  | { kind: 'delivered'; status: number }
  /** 410 Gone: the receiver wants nothing more from this registration. */
  | { kind: 'gone'; status: 410 }
  /** The SSRF guard refused the URL or an address it resolved to: retrying cannot help. */
  | { kind: 'refused'; error: typeof DeliveryError.refused; detail: string }
  /** Any other status (3xx included: redirects are never followed) or a network error; worth retrying. */
  | { kind: 'failed'; error: typeof DeliveryError.failed; detail: string; status?: number; retryAfterMs?: number };

const refused = (detail: string): DeliveryOutcome => ({ kind: 'refused', error: DeliveryError.refused, detail });

export interface DeliveryRequest {
  url: string;
  /** The JSON body, exactly as signed. */
  body: string;
  /** The Standard Webhooks headers of this attempt. */
  headers: Record<string, string>;
  /** CIDRs that may be reached although not public (WEBHOOK_ALLOWED_CIDRS). */
  allowedCidrs: readonly string[];
  /** Deadline of the whole attempt, connecting and reading the response included (default 10 s). */
  timeoutMs?: number;
  /** Longest Retry-After honoured (default 1 h: the retry schedule's own maximum interval). */
  maxRetryAfterMs?: number;
}

/** Deadline of one attempt: long enough for a slow receiver, short of the activity's 30 s start-to-close. */
export const DELIVERY_TIMEOUT_MS = 10_000;
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/**
 * POSTs one webhook message. Uses node:http(s) rather than fetch because the connection must go through the
 * guarded `lookup` (the addresses checked are the ones connected to) and redirects must not be followed (a 3xx
 * could point anywhere). The response body is drained and ignored: only the status and Retry-After count.
 * Never throws: every way an attempt can end is a DeliveryOutcome.
 */
export async function postWebhook(request: DeliveryRequest): Promise<DeliveryOutcome> {
  const badShape = checkUrlShape(request.url);
  if (badShape) return refused(badShape);
  const url = new URL(request.url);
  try {
    checkLiteralHost(hostOf(url), request.allowedCidrs);
  } catch (err) {
    return refused((err as Error).message);
  }
  const timeoutMs = request.timeoutMs ?? DELIVERY_TIMEOUT_MS;
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise<DeliveryOutcome>((resolve) => {
    const req = send(url, {
      method: 'POST',
      headers: {
        ...request.headers,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(request.body),
        'user-agent': 'batchline-webhooks',
      },
      lookup: guardedLookup(request.allowedCidrs),
      agent: false, // one connection per attempt: no pooled socket outlives the address check that opened it
    });
    const deadline = setTimeout(() => req.destroy(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.on('error', () => undefined); // a broken body changes nothing: the status has been read
      res.on('close', () => clearTimeout(deadline));
      res.resume();
      resolve(classify(status, res.headers['retry-after'], Date.now(), request.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS));
    });
    req.on('error', (err) => {
      clearTimeout(deadline);
      if (err instanceof WebhookAddressRefusedError) resolve(refused(err.message));
      else resolve({ kind: 'failed', error: DeliveryError.failed, detail: describeNetworkError(err) });
    });
    req.end(request.body);
  });
}

function classify(
  status: number,
  retryAfter: string | undefined,
  now: number,
  maxRetryAfterMs: number,
): DeliveryOutcome {
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  if (status === 410) return { kind: 'gone', status };
  const retryAfterMs = parseRetryAfter(retryAfter, now, maxRetryAfterMs);
  const detail = status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`;
  return {
    kind: 'failed',
    error: DeliveryError.failed,
    detail,
    status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

/**
 * A Retry-After header (delay-seconds or an HTTP-date) as milliseconds from `now`, capped at `maxMs`; undefined
 * when absent or unreadable, so the retry schedule's own backoff applies.
 */
export function parseRetryAfter(
  value: string | undefined,
  now: number,
  maxMs: number = MAX_RETRY_AFTER_MS,
): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    // HTTP-date forms all start with a day name; Date.parse alone would read '-5' as a year.
    const at = /^[A-Za-z]{3}/.test(text) ? Date.parse(text) : NaN;
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 0), maxMs);
}

/** A network error as a short detail for the log (code and message, never a stack). */
function describeNetworkError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
