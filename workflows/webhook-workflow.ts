import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { WebhookEventRef } from '../activities/webhooks.js';
import type { WebhookWorkflowInput } from '../src/contracts/webhook.js';

/**
 * Attempts per delivery. With 1 s initial interval, x2 backoff and a 1 h cap, 20 attempts span about 8 hours
 * (1 + 2 + ... + 2048 s, then seven hourly retries): long enough to ride out a receiver's outage.
 */
export const WEBHOOK_MAX_ATTEMPTS = 20;
/** Deliveries in flight at once: a receiver sees at most this many concurrent requests per batch. */
const WINDOW = 16;
/** Event references held at once (collected, not yet delivered): bounds this workflow's memory. */
const QUEUE_LIMIT = 256;
/** History length at which a run hands over to a new one (well below Temporal's limits). */
const HISTORY_LIMIT = 4000;

/** Error types after which a delivery is not retried: the receiver said Gone, or the SSRF guard refused it. */
const NON_RETRYABLE_WEBHOOK_ERRORS = ['WebhookGone', 'WebhookRefused'];

/** The retry schedule of every delivery: exponential backoff from 1 s, doubling, capped at 1 h. */
const DELIVERY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '1h',
    maximumAttempts: WEBHOOK_MAX_ATTEMPTS,
    nonRetryableErrorTypes: NON_RETRYABLE_WEBHOOK_ERRORS,
  },
};
const { deliverWebhook } = proxyActivities<Activities>(DELIVERY_OPTIONS);
/** The long poll of the event log (heartbeating) and store writes: retried for as long as it takes. */
const { collectWebhookEvents, recordFailedDelivery } = proxyActivities<Activities>({
  startToCloseTimeout: '1m',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

export interface WebhookProgress {
  batchId: string;
  /** Messages delivered (2xx) and failed for good (listed under the batch), in this run and the runs before it. */
  delivered: number;
  failed: number;
  inFlight: number;
  /** Collected events waiting for a delivery slot. */
  queued: number;
  /** Event log position up to which every event has been handed to a delivery. */
  afterSeq: number;
  /** The batch's end event type, once the batch has ended. */
  end?: string;
  /** The receiver answered 410 Gone: nothing more is delivered. */
  gone: boolean;
}

/** Delivery counts and position: `temporal workflow query --workflow-id batch-<id>/webhooks --name webhookProgress`. */
export const webhookProgressQuery = defineQuery<WebhookProgress>('webhookProgress');

/** A run's input: the contract's, plus tuning and the counts carried across continue-as-new for webhookProgress. */
export interface WebhookRunInput extends WebhookWorkflowInput {
  counts?: { delivered: number; failed: number };
  /** Attempts per delivery (default WEBHOOK_MAX_ATTEMPTS). */
  maxAttempts?: number;
  /** History length at which a run continues as new (default 4000; tests lower it to see hand-overs). */
  historyLimit?: number;
}

/**
 * A batch's webhook deliveries: collects item events from the batch's event log in the item store (the activity
 * long-polls; only sequence numbers and types enter history), delivers each with its own retry schedule, at most
 * WINDOW at a time, and delivers the batch's end once every item event has been delivered or has failed for
 * good, so the end is the last message a receiver gets. A 410 Gone stops everything: deliveries in flight are
 * cancelled and the workflow returns. Before its history grows long, a run lets its deliveries settle and
 * continues as new from the first event not yet handed to a delivery.
 */
export async function webhookWorkflow(input: WebhookRunInput): Promise<WebhookProgress> {
  const { batchId } = input;
  const maxAttempts = input.maxAttempts ?? WEBHOOK_MAX_ATTEMPTS;
  const historyLimit = input.historyLimit ?? HISTORY_LIMIT;
  const retry = { ...DELIVERY_OPTIONS.retry, maximumAttempts: maxAttempts };
  const queue: WebhookEventRef[] = [];
  let collectedTo = input.afterSeq ?? 0; // the collector's position
  let gone = input.gone ?? false;
  let delivered = input.counts?.delivered ?? 0;
  let failed = input.counts?.failed ?? 0;
  let inFlight = 0;
  let end: { type: string; deliver: boolean } | undefined;
  let unregistered = false;
  let collecting = false;
  let collectFailure: unknown;
  let changes = 0; // bumped whenever something the main loop waits on changes

  /** Everything up to here has been handed to a delivery: queued events are collected again by the next run. */
  const handedTo = () => (queue.length > 0 ? queue[0]!.seq - 1 : collectedTo);
  const progress = (): WebhookProgress => ({
    batchId,
    delivered,
    failed,
    inFlight,
    queued: queue.length,
    afterSeq: handedTo(),
    ...(end ? { end: end.type } : {}),
    gone,
  });
  setHandler(webhookProgressQuery, progress);
  if (gone) return progress();

  // Deliveries and the long poll run in scopes that a 410 (or a hand-over to the next run) can cancel.
  const deliveries = new CancellationScope();
  let poll = new CancellationScope();

  const collect = (): void => {
    if (poll.consideredCancelled) poll = new CancellationScope(); // a cancelled scope stays cancelled
    collecting = true;
    poll
      .run(() => collectWebhookEvents({ batchId, afterSeq: collectedTo, limit: QUEUE_LIMIT - queue.length }))
      .then((got) => {
        queue.push(...got.events);
        collectedTo = got.afterSeq;
        if (got.end) end = got.end;
        if (got.unregistered) unregistered = true;
      })
      .catch((err: unknown) => {
        if (!isCancellation(err)) collectFailure = err; // cancelled: collected again from collectedTo
      })
      .finally(() => {
        collecting = false;
        changes++;
      });
  };

  const deliver = (seq: number | 'end', type: string): Promise<void> => {
    inFlight++;
    return deliveries
      .run(() =>
        deliverWebhook.executeWithOptions(
          { ...DELIVERY_OPTIONS, retry, summary: seq === 'end' ? type : `${type} (event ${seq})` },
          [{ batchId, seq, maxAttempts }],
        ),
      )
      .then(() => {
        delivered++;
      })
      .catch(async (err: unknown) => {
        if (isCancellation(err)) return; // the receiver is gone
        const cause = err instanceof ActivityFailure ? err.cause : undefined;
        if (cause instanceof ApplicationFailure && cause.type === 'WebhookGone') {
          gone = true;
          deliveries.cancel();
          poll.cancel();
          return;
        }
        failed++;
        // The activity lists its own final failure; this covers a last attempt that timed out or lost its worker.
        const attempts = attemptOf(cause) ?? maxAttempts;
        const lastError = (cause ?? (err as Error)).message || 'delivery failed';
        // Retried until it succeeds; it can only reject when this workflow itself is cancelled.
        await recordFailedDelivery({ batchId, seq, eventType: type, attempts, lastError }).catch(() => undefined);
      })
      .finally(() => {
        inFlight--;
        changes++;
      });
  };

  for (;;) {
    const info = workflowInfo();
    const draining = info.continueAsNewSuggested || info.historyLength > historyLimit;
    if (gone || unregistered) break;
    if (collectFailure) {
      const cause = collectFailure instanceof Error ? collectFailure : undefined;
      throw ApplicationFailure.create({
        type: 'WebhookCollectFailed',
        message: `collecting events of batch ${batchId} failed`,
        cause,
      });
    }
    if (end && !collecting && queue.length === 0 && inFlight === 0) {
      if (end.deliver) await deliver('end', end.type);
      break;
    }
    if (draining) {
      if (collecting) poll.cancel();
      await condition(() => !collecting && inFlight === 0);
      if (gone) break;
      await condition(allHandlersFinished);
      await continueAsNew<typeof webhookWorkflow>({
        ...input,
        afterSeq: handedTo(),
        gone,
        counts: { delivered, failed },
      });
    }
    if (!end && !collecting && queue.length < QUEUE_LIMIT) collect();
    while (queue.length > 0 && inFlight < WINDOW) {
      const ref = queue.shift()!;
      void deliver(ref.seq, ref.type);
    }
    const seen = changes;
    await condition(() => changes !== seen);
  }
  // Gone or unregistered: let cancelled deliveries and the poll report back before returning.
  await condition(() => !collecting && inFlight === 0);
  return progress();
}

/** The attempt number an activity put in its failure's details. */
function attemptOf(failure: unknown): number | undefined {
  if (!(failure instanceof ApplicationFailure)) return undefined;
  const [detail] = failure.details ?? [];
  const attempt = (detail as { attempt?: unknown } | undefined)?.attempt;
  return typeof attempt === 'number' ? attempt : undefined;
}
