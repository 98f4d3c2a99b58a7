// The worker's workflow entry point: every workflow type the worker registers.
export { batchWorkflow } from './batch-workflow.js';
