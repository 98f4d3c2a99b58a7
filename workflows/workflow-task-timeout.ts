import type { BatchOptions } from '../src/contracts/batch.js';
import type { Duration } from '@temporalio/common';

/**
 * The workflow task timeout of a batch's and its shards' executions. A workflow task stays open while local
 * activities run; the worker completes it at 80% of this timeout to record their results, and only then do
 * signals, updates and queries get an answer. Temporal's default of 10 s would let steering wait 8 s, so runs
 * with local item activities use 5 s (answers within about 4 s), trading a little throughput for steering that
 * answers promptly (bench/tune.ts measures the trade). Remote: Temporal's default.
 */
export function itemWorkflowTaskTimeout(options: Pick<BatchOptions, 'itemActivities'>): Duration | undefined {
  return options.itemActivities === 'local' ? '5s' : undefined;
}
