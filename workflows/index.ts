// The worker's workflow entry point: every workflow type the worker registers.
export { batchWorkflow } from './batch-workflow.js';
export { shardWorkflow } from './shard-workflow.js';
export { webhookWorkflow } from './webhook-workflow.js';
export { predictWorkflow } from './predict-workflow.js';
