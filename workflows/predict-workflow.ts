// STUB: replaced by the online prediction workflow (issue 5). Deterministic code only.
import type { ItemResult } from '../src/contracts/batch.js';
import type { PredictWorkflowInput } from '../src/contracts/predict.js';

export async function predictWorkflow(_input: PredictWorkflowInput): Promise<ItemResult[]> {
  return [];
}
