// Sync predictions as clients send them: an open loop at a fixed rate (each request starts on schedule, whether or
// not earlier ones have answered), every answer classified by its status, and a request that has no complete answer
// by its own timeout plus a grace period aborted and counted as unanswered. Classifying by status keeps the figures
// meaningful whatever the server does under load: 200, 503 (shed, with Retry-After), 504 (deadline passed), other.
import { percentile } from './system-run.js';

/** One request's fate: its HTTP status, or `unanswered` (aborted at its deadline), or `error` (no HTTP answer). */
export interface PredictOutcome {
  /** When it was sent, ms after the stream started. */
  sentAtMs: number;
  /** When it was sent, wall clock (ms since epoch), to set beside Temporal's event times. */
  sentAtEpochMs: number;
  status: number | 'unanswered' | 'error';
  /** From sending to the whole answer read (ms); for `unanswered`, the deadline. */
  latencyMs: number;
  /** A 503's `Retry-After` header, null when absent. */
  retryAfter?: string | null;
  /** Why an `error` had no answer. */
  error?: string;
  /** The task the answer names (a 200's result, a 504's pointer to the task that goes on). */
  taskId?: string;
}

export interface PredictStreamOptions {
  apiUrl: string;
  model: string;
  /** Item inputs, one per request, cycled. */
  inputs: Record<string, unknown>[];
  ratePerSecond: number;
  /** The request's `timeoutMs`: how long the API waits for the result before its 504. */
  timeoutMs: number;
  /** A request with no complete answer `timeoutMs + graceMs` after it was sent is aborted (default 10 s). */
  graceMs?: number;
}

export interface PredictStream {
  /** Sends no more requests; those in flight go on. */
  stop(): void;
  /** Every request's outcome, once the stream is stopped and each request has answered or been aborted. */
  readonly done: Promise<PredictOutcome[]>;
}

/** Starts sending sync predictions at `ratePerSecond` until stop(). */
export function startPredictStream(options: PredictStreamOptions): PredictStream {
  const { apiUrl, model, inputs, ratePerSecond, timeoutMs, graceMs = 10_000 } = options;
  let stopped = false;
  let wake: () => void = () => {};
  const outcomes: PredictOutcome[] = [];
  const inFlight: Promise<void>[] = [];
  const start = performance.now();

  const send = async (i: number): Promise<void> => {
    const sentAt = performance.now();
    const sentAtMs = sentAt - start;
    const sentAtEpochMs = Date.now();
    const deadline = AbortSignal.timeout(timeoutMs + graceMs);
    try {
      const res = await fetch(`${apiUrl}/v1/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, inputs: inputs[i % inputs.length], timeoutMs }),
        signal: deadline,
      });
      const text = await res.text(); // the answer counts once it is whole; the same signal bounds the body
      const latencyMs = performance.now() - sentAt;
      const taskId = taskIdOf(text);
      outcomes.push({
        sentAtMs,
        sentAtEpochMs,
        status: res.status,
        latencyMs,
        ...(res.status === 503 ? { retryAfter: res.headers.get('retry-after') } : {}),
        ...(taskId ? { taskId } : {}),
      });
    } catch (err) {
      const timedOut = deadline.aborted;
      outcomes.push({
        sentAtMs,
        sentAtEpochMs,
        status: timedOut ? 'unanswered' : 'error',
        latencyMs: timedOut ? timeoutMs + graceMs : performance.now() - sentAt,
        ...(timedOut ? {} : { error: String((err as Error).cause ?? (err as Error).message) }),
      });
    }
  };

  const loop = async (): Promise<PredictOutcome[]> => {
    for (let i = 0; !stopped; i++) {
      const wait = start + (i * 1000) / ratePerSecond - performance.now();
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      if (stopped) break;
      inFlight.push(send(i));
    }
    await Promise.all(inFlight);
    return outcomes.sort((a, b) => a.sentAtMs - b.sentAtMs);
  };

  const done = loop();
  return {
    stop() {
      stopped = true;
      wake();
    },
    done,
  };
}

/** The `taskId` of a JSON answer (a 200's, or a 504's beside its error), if it names one. */
function taskIdOf(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { taskId?: unknown };
    return typeof body.taskId === 'string' ? body.taskId : undefined;
  } catch {
    return undefined;
  }
}

/** Sync predictions for `durationMs`, then their outcomes (those still in flight are waited for). */
export async function predictFor(options: PredictStreamOptions, durationMs: number): Promise<PredictOutcome[]> {
  const stream = startPredictStream(options);
  await new Promise((r) => setTimeout(r, durationMs));
  stream.stop();
  return stream.done;
}

/** Outcomes counted by class, with the latencies of the answered ones. */
export interface PredictSummary {
  sent: number;
  ok: number;
  okP50Ms: number;
  okP99Ms: number;
  /** 503: shed by admission control (or the store being down); how many lacked `Retry-After`. */
  shed: number;
  shedWithoutRetryAfter: number;
  shedP99Ms: number;
  /** 504: the API's deadline passed; the task goes on. */
  timedOut: number;
  /** Any other status (by status), and `error` for requests that got no HTTP answer at all (by message). */
  other: Record<string, number>;
  /** No complete answer within the request's timeoutMs plus the grace period. */
  unanswered: number;
}

export function summarizePredicts(outcomes: PredictOutcome[]): PredictSummary {
  const latencies = (status: number) => outcomes.filter((o) => o.status === status).map((o) => o.latencyMs);
  const ok = latencies(200);
  const shed = outcomes.filter((o) => o.status === 503);
  const other: Record<string, number> = {};
  for (const o of outcomes) {
    if (o.status === 200 || o.status === 503 || o.status === 504 || o.status === 'unanswered') continue;
    const key = o.status === 'error' ? `error: ${o.error}` : String(o.status);
    other[key] = (other[key] ?? 0) + 1;
  }
  return {
    sent: outcomes.length,
    ok: ok.length,
    okP50Ms: percentile(ok, 50),
    okP99Ms: percentile(ok, 99),
    shed: shed.length,
    shedWithoutRetryAfter: shed.filter((o) => !o.retryAfter).length,
    shedP99Ms: percentile(
      shed.map((o) => o.latencyMs),
      99,
    ),
    timedOut: latencies(504).length,
    other,
    unanswered: outcomes.filter((o) => o.status === 'unanswered').length,
  };
}
