import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BatchEnd } from '../src/contracts/batch.js';
import { NotFoundError } from '../src/errors.js';
import type { Metrics } from '../src/metrics.js';
import type { ItemStore } from '../src/stores/item-store.js';
import { postWebhook } from '../src/webhooks/deliver.js';
import { endEventType, itemEventType, type EventType } from '../src/contracts/event-type.js';
import { deliveryError, WebhookEventKind } from '../src/contracts/webhook.js';
import { endMessage, itemMessage, webhookMessageId, type WebhookMessage } from '../src/webhooks/payload.js';
import { signatureHeaders } from '../src/webhooks/signature.js';

export interface WebhookActivityDeps {
  store: ItemStore;
  /**
   * Records the end of a batch whose workflow closed without recording it (terminated, timed out), from
   * Temporal's word; asked once per collectWebhookEvents call whose log stays quiet (after endFallbackMs, or at
   * the call's end). Without it (some tests), only recorded ends are seen.
   */
  recordMissingEnd?(batchId: string): Promise<BatchEnd | undefined>;
  /** CIDRs that deliveries may reach although private, loopback or link-local (WEBHOOK_ALLOWED_CIDRS). */
  allowedCidrs: readonly string[];
  metrics?: Metrics;
  /** How long one collectWebhookEvents call waits for new events (default 20 s). */
  collectWaitMs?: number;
  /** How long a call's log stays quiet before recordMissingEnd is asked, if before the call's end (default 30 s). */
  endFallbackMs?: number;
}

export interface CollectWebhookEventsInput {
  batchId: string;
  /** Event log position already collected (0: from the start). */
  afterSeq: number;
  /** Most event references to return. */
  limit: number;
}

/** One event to deliver: its place in the event log and its type. The payload stays in the store. */
export interface WebhookEventRef {
  seq: number;
  type: EventType;
}

export interface CollectedWebhookEvents {
  /** Item events after afterSeq that the registration asked for, oldest first. */
  events: WebhookEventRef[];
  /** The new collect position (past events the registration filtered out, too). */
  afterSeq: number;
  /**
   * Set once the batch has ended and the log was read to its end after that was known: no item event can follow.
   * `deliver` is false when the registration did not ask for batch events.
   */
  end?: { type: EventType; deliver: boolean };
  /** The batch or its registration is not in the store (a submission that could not start): nothing to deliver. */
  unregistered?: boolean;
}

export interface DeliverWebhookInput {
  batchId: string;
  /** The item event's place in the event log, or 'end' for the batch's end. */
  seq: number | 'end';
  /** The retry policy's maximumAttempts: the last attempt records the failed delivery in the store. */
  maxAttempts: number;
}

export interface RecordFailedDeliveryInput {
  batchId: string;
  seq: number | 'end';
  eventType: string;
  attempts: number;
  lastError: string;
}

/**
 * How long the long poll waits for a write to the store before reading the log again (a write wakes it sooner),
 * and how long a quiet log waits before the batch is checked for having closed without recording its end (at the
 * latest when the call ends: COLLECT_WAIT_MS).
 */
const LOG_POLL_MS = 200;
const END_FALLBACK_MS = 30_000;
const COLLECT_WAIT_MS = 20_000;
/** Shortest retry delay taken from Retry-After: `Retry-After: 0` must not turn into a tight retry loop. */
const MIN_RETRY_AFTER_MS = 1000;

export function createWebhookActivities({
  store,
  recordMissingEnd,
  allowedCidrs,
  metrics,
  collectWaitMs = COLLECT_WAIT_MS,
  endFallbackMs = END_FALLBACK_MS,
}: WebhookActivityDeps) {
  /** recordMissingEnd, where a batch workflow not started yet (it starts right after this one) is still running. */
  const recordedEnd = async (batchId: string): Promise<BatchEnd | undefined> => {
    try {
      return await recordMissingEnd?.(batchId);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  };

  /** Rebuilds a message from the store: payloads never enter workflow history. */
  const message = async (batchId: string, seq: number | 'end'): Promise<WebhookMessage> => {
    if (seq === 'end') {
      const end = await store.getEnd(batchId);
      if (!end)
        throw ApplicationFailure.create({ type: 'BatchRunning', message: `batch ${batchId} has not ended yet` });
      return endMessage(end.status, end.summary);
    }
    const [event] = await store.listEvents(batchId, seq - 1, 1);
    if (event?.seq !== seq || event.kind !== 'item') {
      throw ApplicationFailure.create({
        type: 'WebhookEventNotFound',
        message: `event ${seq} of batch ${batchId} is not in the store`,
        nonRetryable: true,
      });
    }
    return itemMessage(batchId, event);
  };

  /** Lists a failed delivery under its batch, with only the phrase its tenant may read (DeliveryError). */
  const recordFailure = (
    batchId: string,
    seq: number | 'end',
    eventType: string,
    attempts: number,
    lastError: string,
  ): Promise<void> =>
    store.putFailedDelivery(batchId, {
      messageId: webhookMessageId(batchId, seq),
      eventType,
      attempts,
      lastError: deliveryError(lastError),
      failedAt: new Date().toISOString(),
    });

  return {
    /**
     * Long-polls the batch's event log (up to collectWaitMs, heartbeating, woken by writes to the store) and
     * returns references to the events after `afterSeq` that the registration asked for, as soon as there are any.
     * The batch's end is the log's last entry, so once it is read every item event has been: `end` is set then.
     * Returns only sequence numbers and types.
     */
    async collectWebhookEvents({
      batchId,
      afterSeq,
      limit,
    }: CollectWebhookEventsInput): Promise<CollectedWebhookEvents> {
      const ctx = Context.current();
      const webhook = (await store.getBatch(batchId))?.webhook;
      if (!webhook) return { events: [], afterSeq, unregistered: true };
      const wantItems = webhook.events.includes(WebhookEventKind.item);
      const deadline = Date.now() + collectWaitMs;
      const events: WebhookEventRef[] = [];
      let cursor = afterSeq;
      const quietSince = Date.now();
      let asked = false;
      for (;;) {
        ctx.heartbeat();
        for (;;) {
          const want = wantItems ? limit - events.length : 1000;
          const page = await store.listEvents(batchId, cursor, want);
          for (const e of page) {
            if (e.kind === 'end') {
              return {
                events,
                afterSeq: cursor,
                end: { type: endEventType(e.status), deliver: webhook.events.includes(WebhookEventKind.batch) },
              };
            }
            cursor = e.seq;
            if (wantItems) events.push({ seq: e.seq, type: itemEventType(e.status) });
          }
          if (events.length >= limit) return { events, afterSeq: cursor };
          if (page.length < want) break;
        }
        if (events.length > 0) return { events, afterSeq: cursor };
        const atDeadline = Date.now() >= deadline;
        // A quiet log: once per call at the latest (at its deadline), ask whether the batch closed unrecorded.
        if (recordMissingEnd && !asked && (atDeadline || Date.now() - quietSince >= endFallbackMs)) {
          asked = true;
          if (await recordedEnd(batchId)) continue; // recorded now: the next read finds it
        }
        if (atDeadline) return { events, afterSeq: cursor };
        await store.nextWrite(LOG_POLL_MS, ctx.cancellationSignal);
        if (ctx.cancellationSignal.aborted) await ctx.cancelled; // rejects with CancelledFailure
      }
    },

    /**
     * Delivers one message: rebuilds it from the store, signs it (Standard Webhooks, a fresh timestamp per
     * attempt, the same webhook-id on every attempt) and POSTs it. 2xx is done. 410 fails non-retryably as
     * WebhookGone (the workflow stops all deliveries); an address the SSRF guard refuses fails non-retryably as
     * WebhookRefused and is listed as a failed delivery. Anything else is retried by the activity's retry policy,
     * after Retry-After when the receiver sent one; the last attempt lists the delivery as failed before failing.
     */
    async deliverWebhook({
      batchId,
      seq,
      maxAttempts,
    }: DeliverWebhookInput): Promise<{ status: number; attempt: number }> {
      const { attempt } = Context.current().info;
      const log = Context.current().log;
      const webhook = (await store.getBatch(batchId))?.webhook;
      if (!webhook) {
        throw ApplicationFailure.create({
          type: 'WebhookNotRegistered',
          message: `batch ${batchId} has no webhook`,
          nonRetryable: true,
        });
      }
      const msg = await message(batchId, seq);
      const messageId = webhookMessageId(batchId, seq);
      const body = JSON.stringify(msg);
      const result = await postWebhook({
        url: webhook.url,
        body,
        headers: { ...signatureHeaders(webhook.secret, messageId, body) },
        allowedCidrs,
      });
      const details = [{ attempt }];
      switch (result.kind) {
        case 'delivered':
          metrics?.webhookDeliveries.inc({ outcome: 'delivered' });
          return { status: result.status, attempt };
        case 'gone':
          metrics?.webhookDeliveries.inc({ outcome: 'gone' });
          log.info('webhook receiver answered 410 Gone: deliveries stop', { batchId, messageId });
          throw ApplicationFailure.create({
            type: 'WebhookGone',
            message: `${webhook.url} answered 410 Gone`,
            nonRetryable: true,
            details,
          });
        // The failure's message is the tenant's phrase (the workflow lists it when this attempt cannot); the
        // detail goes to the log only.
        case 'refused':
          metrics?.webhookDeliveries.inc({ outcome: 'refused' });
          await recordFailure(batchId, seq, msg.type, attempt, result.error);
          log.warn('webhook delivery refused', { batchId, messageId, detail: result.detail });
          throw ApplicationFailure.create({
            type: 'WebhookRefused',
            message: result.error,
            nonRetryable: true,
            details,
          });
        case 'failed': {
          const last = attempt >= maxAttempts;
          metrics?.webhookDeliveries.inc({ outcome: last ? 'exhausted' : 'retry' });
          if (last) {
            await recordFailure(batchId, seq, msg.type, attempt, result.error);
            log.warn('webhook delivery failed for good', {
              batchId,
              messageId,
              attempts: attempt,
              detail: result.detail,
            });
          } else {
            log.debug('webhook delivery attempt failed', { batchId, messageId, attempt, detail: result.detail });
          }
          const nextRetryDelay =
            result.retryAfterMs === undefined ? undefined : Math.max(result.retryAfterMs, MIN_RETRY_AFTER_MS);
          throw ApplicationFailure.create({
            type: 'WebhookDeliveryFailed',
            message: result.error,
            nonRetryable: last,
            details,
            ...(nextRetryDelay !== undefined && !last ? { nextRetryDelay } : {}),
          });
        }
      }
    },

    /**
     * Lists a delivery as failed when its activity could not do so itself (its last attempt timed out, or its
     * worker died). Idempotent by message id: the activity's own record wins. `lastError` is shown as its
     * DeliveryError phrase, whatever text the workflow passes.
     */
    async recordFailedDelivery({
      batchId,
      seq,
      eventType,
      attempts,
      lastError,
    }: RecordFailedDeliveryInput): Promise<void> {
      await recordFailure(batchId, seq, eventType, attempts, lastError);
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
