import type { BatchItem, CreateBatchRequest } from '../contracts/batch.js';
import { WebhookRegistration, type StoredWebhook } from '../contracts/webhook.js';
import { InvalidRequestError, type ErrorDetail } from '../errors.js';
import { checkItemInputs } from '../runtime/input-validation.js';
import type { ResolvedModel } from '../runtime/model-repository.js';
import { newWebhookSecret } from '../webhooks/signature.js';
import { checkWebhookUrl } from '../webhooks/url-guard.js';

/** Most per-item problems reported in one 400; the rest are counted. */
export const MAX_REPORTED_ISSUES = 20;

/**
 * Checks a webhook registration's URL against the SSRF rules (scheme, credentials, refused address ranges) and
 * completes it with a generated secret when none was given.
 */
export function prepareWebhook(
  webhook: WebhookRegistration | undefined,
  allowedCidrs: readonly string[],
): StoredWebhook | undefined {
  if (!webhook) return undefined;
  const refused = checkWebhookUrl(webhook.url, allowedCidrs);
  if (refused)
    throw new InvalidRequestError(`webhook.url: ${refused}`, [{ path: ['webhook', 'url'], message: refused }]);
  return { url: webhook.url, events: webhook.events, secret: webhook.secret ?? newWebhookSecret() };
}

/** Why an item's inputs do not fit its model, or undefined when they do. */
export function inputProblems(model: ResolvedModel, item: BatchItem): ErrorDetail[] | undefined {
  try {
    checkItemInputs(model.config, item.inputs);
    return undefined;
  } catch (err) {
    if (!(err instanceof InvalidRequestError)) throw err;
    return err.details ?? [{ path: [], message: err.message }];
  }
}

/** Collects the issues of items that do not fit the model, under `prefix` (a JSON path or an NDJSON line). */
export class ItemIssues {
  readonly details: ErrorDetail[] = [];
  bad = 0;

  check(model: ResolvedModel, item: BatchItem, prefix: (string | number)[]): void {
    const problems = inputProblems(model, item);
    if (problems) this.add(prefix, problems);
  }

  add(prefix: (string | number)[], details: ErrorDetail[]): void {
    this.bad++;
    for (const d of details) {
      if (this.details.length < MAX_REPORTED_ISSUES)
        this.details.push({ path: [...prefix, ...d.path], message: d.message });
    }
  }

  /** Throws a 400 naming the first problem and how many items have one. */
  throwIfAny(what: string): void {
    if (this.bad === 0) return;
    const first = this.details[0]!;
    throw new InvalidRequestError(
      `${this.bad} ${what} rejected: ${first.path.join('.')}: ${first.message}`,
      this.details,
    );
  }
}

/** Validates every item of a JSON batch against its model (400 before anything is stored). */
export function checkBatchItems(model: ResolvedModel, request: CreateBatchRequest): void {
  const issues = new ItemIssues();
  request.items.forEach((item, i) => issues.check(model, item, ['items', i]));
  issues.throwIfAny(`item(s) do not fit model '${model.name}' v${model.version}, so the batch was`);
}
