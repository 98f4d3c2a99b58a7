// Where a chunked batch's wall time goes, read from the Temporal histories of its executions (the parent, its
// shards and their runs): how long a chunk's activity waited for a worker and ran, how long a workflow task took,
// the gap between a chunk's end and its shard's next chunk, and how many chunks ran at once on average.
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';

/** The batch's workflow types: the parent and its shards. */
const BATCH_WORKFLOW_TYPES = ['batchWorkflow', 'shardWorkflow'];

/** A visibility query for every execution of a batch started since `since` (benches run one batch at a time). */
export function batchExecutionsSince(since: Date): string {
  const types = BATCH_WORKFLOW_TYPES.map((t) => `'${t}'`).join(', ');
  return `WorkflowType IN (${types}) AND StartTime >= '${since.toISOString()}'`;
}

export interface ChunkTimeline {
  executions: number;
  chunks: number;
  /** Mean ms: scheduled -> started (waiting for a worker), started -> completed (the attempt that completed). */
  chunkDispatchMs: number;
  chunkRunMs: number;
  /** Mean ms from a chunk's completion to its execution's next chunk being scheduled (the workflow task between). */
  gapMs: number;
  workflowTasks: number;
  /** Mean ms of a workflow task: scheduled -> started, started -> completed. */
  workflowTaskQueueMs: number;
  workflowTaskRunMs: number;
  /** Chunk attempts running at once, on average over the span from the first history event to the last. */
  chunksInFlight: number;
  spanMs: number;
}

const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
const msOf = (t: temporal.api.history.v1.IHistoryEvent['eventTime']) =>
  Number(t!.seconds) * 1000 + Math.floor((t!.nanos ?? 0) / 1e6);

export async function chunkTimeline(client: Client, since: Date): Promise<ChunkTimeline> {
  const chunks: { scheduled: number; started: number; completed: number }[] = [];
  const tasks: { scheduled: number; started: number; completed: number }[] = [];
  const gaps: number[] = [];
  let first = Infinity;
  let last = 0;
  let executions = 0;
  for await (const wf of client.workflow.list({ query: batchExecutionsSince(since) })) {
    executions++;
    const events = (await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory()).events ?? [];
    const scheduled = new Map<string, number>();
    const started = new Map<string, number>();
    let task = { scheduled: 0, started: 0 };
    const ofThisRun: { scheduled: number; completed: number }[] = [];
    for (const e of events) {
      const at = msOf(e.eventTime);
      first = Math.min(first, at);
      last = Math.max(last, at);
      if (e.activityTaskScheduledEventAttributes?.activityType?.name === 'inferChunk')
        scheduled.set(String(e.eventId), at);
      const s = e.activityTaskStartedEventAttributes;
      if (s) started.set(String(s.scheduledEventId), at);
      const c = e.activityTaskCompletedEventAttributes;
      const id = c ? String(c.scheduledEventId) : '';
      if (c && scheduled.has(id)) {
        chunks.push({ scheduled: scheduled.get(id)!, started: started.get(id)!, completed: at });
        ofThisRun.push({ scheduled: scheduled.get(id)!, completed: at });
      }
      if (e.workflowTaskScheduledEventAttributes) task = { scheduled: at, started: 0 };
      if (e.workflowTaskStartedEventAttributes) task.started = at;
      if (e.workflowTaskCompletedEventAttributes) tasks.push({ ...task, completed: at });
    }
    ofThisRun.sort((a, b) => a.scheduled - b.scheduled);
    for (let i = 1; i < ofThisRun.length; i++) gaps.push(ofThisRun[i]!.scheduled - ofThisRun[i - 1]!.completed);
  }
  const spanMs = last - first;
  return {
    executions,
    chunks: chunks.length,
    chunkDispatchMs: mean(chunks.map((c) => c.started - c.scheduled)),
    chunkRunMs: mean(chunks.map((c) => c.completed - c.started)),
    gapMs: mean(gaps),
    workflowTasks: tasks.length,
    workflowTaskQueueMs: mean(tasks.map((t) => t.started - t.scheduled)),
    workflowTaskRunMs: mean(tasks.map((t) => t.completed - t.started)),
    chunksInFlight: chunks.reduce((a, c) => a + c.completed - c.started, 0) / spanMs,
    spanMs,
  };
}
