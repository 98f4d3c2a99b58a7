// Temporal dynamic config: the keys batchline needs on any server it runs on. The dev server takes them as flags
// (src/dev-server.ts), a cluster's server as a file (src/cluster/temporal-server.ts).

/** Temporal dynamic config keys and their values, as `temporal server start-dev --dynamic-config-value` takes them. */
export type DynamicConfig = Record<string, string | number | boolean>;

/**
 * The dynamic config batchline needs from any Temporal server it runs on: the dev server (DEV_SERVER_DYNAMIC_CONFIG)
 * and a cluster (src/cluster/temporal-server.ts, CLUSTER_DYNAMIC_CONFIG).
 */
export const BATCHLINE_DYNAMIC_CONFIG: DynamicConfig = {
  // Eager activities: a workflow task's completion hands the worker its newly scheduled activities at once,
  // skipping a trip through matching (less server CPU and latency per item).
  'system.enableActivityEagerExecution': true,
  // While a workflow task runs, history buffers the events that arrive (a remote item's completion adds two:
  // started and completed). Above 100 (the server's default) it force-fails the running task
  // (WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND); the worker's completion then gets "Task not found" and the
  // shard is replayed from its history. A shard may have up to 512 items in flight (options.concurrency), so up to
  // 1,024 such events; the limit sits above that.
  'history.maximumBufferedEventsBatch': 2000,
  // Matching dispatches each task queue's backlog by task priority (TaskPriority in src/contracts/online-work.ts):
  // a sync prediction goes before async ones and before those whose caller has gone. Off by default before 1.31.
  'matching.useNewMatcher': true,
  // DescribeTaskQueue's statistics, which the API's admission control samples each second, are cached this long
  // (server default 5 s): fresher figures for the decision to refuse a prediction.
  'matching.TaskQueueInfoByBuildIdTTL': '1s',
};
