import type { BatchSummary } from '../contracts/batch.js';
import {
  errorFileId,
  openAIBatchId,
  outputFileId,
  type OpenAIBatch,
  type OpenAIBatchStatus,
} from '../contracts/openai.js';
import { NotFoundError } from '../errors.js';
import type { OpenAIBatchRecord } from '../stores/openai-store.js';
import type { RouteDeps } from './deps.js';
import { requestCounts } from './openai-output.js';

/** OpenAI completes a batch within its window or expires it; batchline keeps running it (docs/openai.md). */
const WINDOW_S = 24 * 60 * 60;

const seconds = (ms: number): number => Math.floor(ms / 1000);

/**
 * A batch as OpenAI shows it: the stored record (request, validation errors, cancel time) and the state of the
 * batchline batch underneath. A batch whose batchline batch is gone (RETENTION_DAYS) reads as `expired`.
 */
export async function openAIBatchView(deps: RouteDeps, record: OpenAIBatchRecord): Promise<OpenAIBatch> {
  const created = seconds(record.createdAt);
  const base: OpenAIBatch = {
    id: openAIBatchId(record.id),
    object: 'batch',
    endpoint: record.endpoint,
    model: record.model,
    errors: null,
    input_file_id: record.inputFileId,
    completion_window: record.completionWindow,
    status: 'failed',
    output_file_id: null,
    error_file_id: null,
    created_at: created,
    in_progress_at: null,
    expires_at: created + WINDOW_S,
    finalizing_at: null,
    completed_at: null,
    failed_at: null,
    expired_at: null,
    cancelling_at: record.cancellingAt !== undefined ? seconds(record.cancellingAt) : null,
    cancelled_at: null,
    request_counts: { total: record.lines, completed: 0, failed: 0 },
    metadata: record.metadata,
    batchline_batch_id: null,
    ...(record.webhook ? { batchline_webhook: record.webhook } : {}),
  };
  if (record.errors) {
    return { ...base, errors: { object: 'list', data: record.errors }, failed_at: created };
  }
  let summary: BatchSummary;
  try {
    summary = await deps.batches.summary(record.id, record.tenant);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    return { ...base, status: 'expired', expired_at: null };
  }
  const counts = await requestCounts(deps.batches.store, record, summary.counts);
  const ended = seconds(Date.parse(summary.updatedAt));
  const status: OpenAIBatchStatus = {
    running: record.cancellingAt !== undefined ? 'cancelling' : 'in_progress',
    completed: 'completed',
    canceled: 'cancelled',
    failed: 'failed',
  }[summary.status] as OpenAIBatchStatus;
  return {
    ...base,
    status,
    in_progress_at: created,
    output_file_id: outputFileId(record.id),
    error_file_id: counts.failed > 0 ? errorFileId(record.id) : null,
    finalizing_at: status === 'completed' ? ended : null,
    completed_at: status === 'completed' ? ended : null,
    failed_at: status === 'failed' ? ended : null,
    cancelled_at: status === 'cancelled' ? ended : null,
    request_counts: counts,
    batchline_batch_id: record.id,
  };
}
