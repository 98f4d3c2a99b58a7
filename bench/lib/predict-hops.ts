// Where a sync prediction's time goes, hop by hop: a sample of the requests, each set beside its task's workflow
// history (one machine, so the client's clock and Temporal's event times agree). The hops: the API starting the task
// (request sent -> workflow started), the workflow task waiting on the interactive task queue (scheduled -> picked up
// by the interactive worker), the worker running it (its workflow tasks, with the local predict activity inside),
// and the answer reaching the client (workflow closed -> the client has read the whole response).
import type { Client, WorkflowHandle } from '@temporalio/client';
import { taskWorkflowId } from '../../src/client/predict-client.js';
import type { PredictOutcome } from './predict-stream.js';
import { percentile } from './system-run.js';

export interface Hop {
  p50Ms: number;
  p99Ms: number;
}

export interface PredictHops {
  /** Requests whose task history was read (evenly spread over the stream). */
  sampled: number;
  toStart: Hop;
  inQueue: Hop;
  onWorker: Hop;
  /** Only requests answered 200: for the others the client stopped listening before the task closed. */
  toClient: Hop;
  /** The client's whole wait, for the same sampled requests. */
  total: Hop;
}

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];
type Timestamp = { seconds?: unknown; nanos?: number | null } | null | undefined;
const ms = (t: Timestamp) => (t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : NaN);
const hop = (values: number[]): Hop => ({ p50Ms: percentile(values, 50), p99Ms: percentile(values, 99) });

/** Reads the histories of up to `sample` of the outcomes that name a task, and splits their time into hops. */
export async function predictHops(client: Client, outcomes: PredictOutcome[], sample = 100): Promise<PredictHops> {
  const named = outcomes.filter((o) => o.taskId !== undefined);
  const step = Math.max(1, named.length / sample);
  const picked = Array.from({ length: Math.min(sample, named.length) }, (_, i) => named[Math.floor(i * step)]!);
  const split = {
    toStart: [] as number[],
    inQueue: [] as number[],
    onWorker: [] as number[],
    toClient: [] as number[],
  };
  const total: number[] = [];
  for (const o of picked) {
    let events: HistoryEvent[];
    try {
      events = (await client.workflow.getHandle(taskWorkflowId(o.taskId!)).fetchHistory()).events ?? [];
    } catch {
      continue; // gone (retention) or not readable: not part of the sample
    }
    const time = (has: (e: HistoryEvent) => unknown, last = false) => {
      const matching = events.filter(has);
      return ms((last ? matching.at(-1) : matching[0])?.eventTime);
    };
    const started = time((e) => e.workflowExecutionStartedEventAttributes);
    const scheduled = time((e) => e.workflowTaskScheduledEventAttributes);
    const pickedUp = time((e) => e.workflowTaskStartedEventAttributes);
    const completed = time((e) => e.workflowTaskCompletedEventAttributes, true);
    const closed = time(
      (e) => e.workflowExecutionCompletedEventAttributes ?? e.workflowExecutionFailedEventAttributes,
      true,
    );
    if (!Number.isFinite(closed)) continue; // still running, or ended otherwise: not a whole split
    split.toStart.push(started - o.sentAtEpochMs);
    split.inQueue.push(pickedUp - scheduled);
    split.onWorker.push(completed - pickedUp);
    if (o.status === 200) split.toClient.push(o.sentAtEpochMs + o.latencyMs - closed);
    total.push(o.latencyMs);
  }
  return {
    sampled: total.length,
    toStart: hop(split.toStart),
    inQueue: hop(split.inQueue),
    onWorker: hop(split.onWorker),
    toClient: hop(split.toClient),
    total: hop(total),
  };
}
