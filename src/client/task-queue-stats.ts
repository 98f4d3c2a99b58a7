// A task queue's backlog as Temporal reports it (DescribeTaskQueue with reportStats): how many tasks wait for a
// worker and how long the oldest has waited, in all and per task priority. The one reading of those statistics,
// for the API's admission control and the benchmarks. The server's figures are approximate, and it caches them for
// `matching.TaskQueueInfoByBuildIdTTL` (BATCHLINE_DYNAMIC_CONFIG shortens it).
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

/** The two halves of a task queue. */
const { TASK_QUEUE_TYPE_WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY } = proto.temporal.api.enums.v1.TaskQueueType;
export const TaskQueueType = { workflow: TASK_QUEUE_TYPE_WORKFLOW, activity: TASK_QUEUE_TYPE_ACTIVITY } as const;

/** One queue type's backlog at one moment. */
export interface Backlog {
  count: number;
  /** How long the oldest waiting task has waited (ms). */
  ageMs: number;
}

export interface TaskQueueBacklog extends Backlog {
  /** The same per priority key, for those the server reports (a server without the priority matcher: key 3 only). */
  byPriority: Map<number, Backlog>;
}

/** A protobuf Duration (seconds may be a Long) in ms. */
function durationMs(d: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return d ? Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6 : 0;
}

type Stats = { approximateBacklogCount?: unknown; approximateBacklogAge?: Parameters<typeof durationMs>[0] } | null;
const backlogOf = (s: Stats | undefined): Backlog => ({
  count: Number(s?.approximateBacklogCount ?? 0),
  ageMs: durationMs(s?.approximateBacklogAge),
});

/** The backlog of one half of `taskQueue`. Throws the client's error (the caller maps it). */
export async function describeBacklog(
  client: Client,
  taskQueue: string,
  type: keyof typeof TaskQueueType,
): Promise<TaskQueueBacklog> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: TaskQueueType[type],
    reportStats: true,
  });
  const byPriority = new Map(
    Object.entries(res.statsByPriorityKey ?? {}).map(([key, s]) => [Number(key), backlogOf(s)] as const),
  );
  return { ...backlogOf(res.stats), byPriority };
}
