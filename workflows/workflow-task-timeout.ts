/**
 * The workflow task timeout of a batch's and its shards' executions (Temporal's default: 10 s). It bounds two
 * waits. A workflow task held by a worker that died is handed to another worker only once it times out, and the
 * batch stands still meanwhile. And a workflow task stays open while local item activities run: the worker
 * completes it at 80% of this timeout to record their results, and only then do signals, updates and queries get
 * an answer. 3 s keeps both short, at the price of a few more workflow tasks per run with local activities
 * (bench/tune.ts measures the trade); a replay that takes longer than this on a starved worker is tried again.
 */
export const ITEM_WORKFLOW_TASK_TIMEOUT_MS = 3000;
