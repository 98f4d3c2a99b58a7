import type { Logger } from 'pino';
import type { InteractiveQueueStats, PredictClient } from '../client/predict-client.js';
import type { Config } from '../config.js';
import type { TaskSource } from '../contracts/predict.js';
import { OverloadedError } from '../errors.js';
import type { Metrics } from '../metrics.js';

// Admission control for online work: refuse at once (503 + Retry-After) what the interactive path could not
// plausibly serve in time, instead of queueing it into a backlog that outlives its callers.

/** Temporal's task queue statistics are sampled at most this often (they are approximate and lag a little anyway). */
const SAMPLE_INTERVAL_MS = 1000;
/** A sample older than this (no online request for a while) is not acted on: the next request takes a new one. */
const SAMPLE_MAX_AGE_MS = 2 * SAMPLE_INTERVAL_MS;
/**
 * The longest Retry-After a shed request is given: the backlog's age says how long the oldest task has waited, not
 * how soon the queue drains, and a queue that moves again should be used again within seconds.
 */
const MAX_RETRY_AFTER_S = 5;
/** A failing sample is logged at warn at most this often (admission then sheds on the in-flight limit only). */
const WARN_INTERVAL_MS = 60_000;

/** Why a request was shed: the prediction_shed_total `reason` label. */
export const ShedReason = {
  /** The oldest online task waiting in the interactive queue is older than the request can afford. */
  queueAge: 'queue_age',
  /** This API process already waits on PREDICT_MAX_IN_FLIGHT sync predictions. */
  inFlight: 'in_flight',
  /** The interactive queue holds PREDICT_MAX_BACKLOG tasks or more (async predictions). */
  backlog: 'backlog',
} as const;
export type ShedReason = (typeof ShedReason)[keyof typeof ShedReason];

type AdmissionConfig = Pick<Config, 'PREDICT_MAX_QUEUE_AGE_MS' | 'PREDICT_MAX_IN_FLIGHT' | 'PREDICT_MAX_BACKLOG'>;

/**
 * Decides whether a new online task may start, from two views of the interactive path:
 * - Temporal's statistics of the interactive task queue, shared by every API host: the age of the oldest waiting
 *   task a new sync task would queue behind (sync tasks go before async and late ones, TaskPriority), and the
 *   backlog's size. Sampled at most once a second, in the background, while online requests arrive: a decision
 *   never waits on Temporal, and acts on the last sample (ignored once older than SAMPLE_MAX_AGE_MS). While Temporal
 *   cannot be asked, only the local limit applies (a start fails anyway).
 * - This process's own count of sync predictions waiting for their result.
 *
 * A sync prediction (sync predict, KServe infer) is shed when the oldest task it would wait behind has waited longer
 * than min(PREDICT_MAX_QUEUE_AGE_MS, half its timeout): queueing behind it, it would likely spend its time waiting
 * and the queue would only grow. An async prediction is shed only when the backlog holds PREDICT_MAX_BACKLOG tasks.
 * Requests that start nothing (an idempotent replay) are never shed.
 */
export class OnlineAdmission {
  private stats: InteractiveQueueStats | undefined;
  private sampledAt = 0;
  private sampling: Promise<void> | undefined;
  private inFlight = 0;
  private warnedAt = 0;

  constructor(
    private readonly predict: Pick<PredictClient, 'queueStats'>,
    private readonly config: AdmissionConfig,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /**
   * Admits a sync prediction that waits up to `timeoutMs`, or throws OverloadedError (503). Returns the function to
   * call once its caller has its answer: until then it counts against PREDICT_MAX_IN_FLIGHT.
   */
  admitSync(source: TaskSource, timeoutMs: number): () => void {
    this.refresh();
    if (this.inFlight >= this.config.PREDICT_MAX_IN_FLIGHT) {
      this.shed(
        source,
        ShedReason.inFlight,
        `this API process already waits on ${this.inFlight} predictions (PREDICT_MAX_IN_FLIGHT)`,
        1,
      );
    }
    const ageMs = this.current()?.syncBacklogAgeMs ?? 0;
    const affordMs = Math.min(this.config.PREDICT_MAX_QUEUE_AGE_MS, timeoutMs / 2);
    if (ageMs > affordMs) {
      this.shed(
        source,
        ShedReason.queueAge,
        `online predictions wait ${(ageMs / 1000).toFixed(1)} s to start, more than this request can afford ` +
          `(${(affordMs / 1000).toFixed(1)} s: PREDICT_MAX_QUEUE_AGE_MS or half its timeout)`,
        Math.ceil(ageMs / 1000),
      );
    }
    this.inFlight++;
    let released = false;
    return () => {
      if (!released) this.inFlight--;
      released = true;
    };
  }

  /** Admits an async prediction, or throws OverloadedError (503) when the interactive backlog is full. */
  admitAsync(source: TaskSource): void {
    this.refresh();
    const stats = this.current();
    const backlog = stats ? stats.workflowBacklog + stats.activityBacklog : 0;
    if (backlog >= this.config.PREDICT_MAX_BACKLOG) {
      this.shed(
        source,
        ShedReason.backlog,
        `${backlog} online tasks are waiting, the most the interactive queue takes (PREDICT_MAX_BACKLOG)`,
        Math.ceil((stats?.syncBacklogAgeMs ?? 1000) / 1000),
      );
    }
  }

  /** The last sample, unless it is too old to act on. */
  private current(): InteractiveQueueStats | undefined {
    return Date.now() - this.sampledAt <= SAMPLE_MAX_AGE_MS ? this.stats : undefined;
  }

  /** Samples the queue's statistics in the background when the last sample is older than SAMPLE_INTERVAL_MS. */
  private refresh(): void {
    if (this.sampling || Date.now() - this.sampledAt < SAMPLE_INTERVAL_MS) return;
    this.sampling = this.predict
      .queueStats()
      .then(
        (stats) => {
          this.stats = stats;
          this.metrics.interactiveBacklog.set({ type: 'workflow' }, stats.workflowBacklog);
          this.metrics.interactiveBacklog.set({ type: 'activity' }, stats.activityBacklog);
          this.metrics.interactiveBacklogAge.set(stats.syncBacklogAgeMs / 1000);
        },
        (err: unknown) => {
          // Temporal unreachable (a start fails with 503 anyway), or the API may not describe task queues: forget
          // the old figures rather than act on them, and say so now and then.
          this.stats = undefined;
          if (Date.now() - this.warnedAt >= WARN_INTERVAL_MS) {
            this.warnedAt = Date.now();
            this.log.warn(
              { err },
              'could not sample the interactive task queue: admission control sheds on PREDICT_MAX_IN_FLIGHT only',
            );
          }
        },
      )
      .finally(() => {
        this.sampledAt = Date.now();
        this.sampling = undefined;
      });
  }

  private shed(source: TaskSource, reason: ShedReason, why: string, retryAfterSeconds: number): never {
    this.metrics.predictionsShed.inc({ source, reason });
    const retryAfter = Math.min(MAX_RETRY_AFTER_S, Math.max(1, retryAfterSeconds));
    throw new OverloadedError(`online predictions are overloaded: ${why}; retry later`, retryAfter);
  }
}
