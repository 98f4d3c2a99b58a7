// STUB: online prediction contracts (issue 5).
import type { ItemInputs } from './batch.js';

/** Input of predictWorkflow: one or more items of one model, inferred on the interactive task queue. */
export interface PredictWorkflowInput {
  taskId: string;
  model: string;
  version?: number;
  items: ItemInputs[];
}
