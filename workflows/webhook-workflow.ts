// STUB: replaced by the webhook delivery workflow (issue 5). Deterministic code only.
import type { WebhookWorkflowInput } from '../src/contracts/webhook.js';

export async function webhookWorkflow(_input: WebhookWorkflowInput): Promise<void> {}
