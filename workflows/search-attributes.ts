import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes.js';

/**
 * The project's custom search attributes. The dev server registers them at start (`--search-attribute`),
 * and the worker registers any that a cluster lacks, so `temporal workflow list --query` can filter batches.
 */
export const BatchModelKey: SearchAttributeKey<'KEYWORD'> = { name: 'BatchModel', type: 'KEYWORD' };
export const BatchStatusKey: SearchAttributeKey<'KEYWORD'> = { name: 'BatchStatus', type: 'KEYWORD' };
export const BatchItemCountKey: SearchAttributeKey<'INT'> = { name: 'BatchItemCount', type: 'INT' };
export const BatchFailedCountKey: SearchAttributeKey<'INT'> = { name: 'BatchFailedCount', type: 'INT' };
/** The tenant (API key owner) of a batch; set at start by the client, never changed by the workflow. */
export const BatchTenantKey: SearchAttributeKey<'KEYWORD'> = { name: 'BatchTenant', type: 'KEYWORD' };

export const SEARCH_ATTRIBUTE_KEYS = [
  BatchModelKey,
  BatchStatusKey,
  BatchItemCountKey,
  BatchFailedCountKey,
  BatchTenantKey,
] as const;

/** Values of BatchStatus as stored in visibility (capitalised, as the Temporal UI shows statuses). */
export const BatchStatusValue = {
  running: 'Running',
  completed: 'Completed',
  canceled: 'Canceled',
  failed: 'Failed',
} as const;
