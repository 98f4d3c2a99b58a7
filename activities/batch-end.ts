import type { BatchEnd } from '../src/contracts/batch.js';
import type { ItemStore } from '../src/stores/item-store.js';

export interface RecordBatchEndInput extends BatchEnd {
  batchId: string;
}

export function createBatchEndActivities({ store }: { store: ItemStore }) {
  return {
    /**
     * A batch workflow's last step: appends the batch's end (status, final summary) to its event log, after every
     * item outcome (each was recorded before its activity completed). Readers of the log (SSE, results?follow,
     * webhooks) then know the batch has ended from the store alone. Idempotent: a retry keeps the first end.
     */
    async recordBatchEnd({ batchId, status, summary }: RecordBatchEndInput): Promise<void> {
      const { failures: _failures, ...rest } = summary;
      await store.endBatch(batchId, { status, summary: rest });
    },
  };
}
