import type { ApiClient } from '../api-client.js';
import { getBatch, outcomeCode, summaryLine } from '../follow.js';
import { etaText } from '../progress.js';
import { writeOut } from '../stdout.js';

/** `batchline status ID`: the batch's state, counts, rate and ETA; exits as its outcome says (docs/cli.md). */
export async function status(api: ApiClient, id: string, options: { json?: boolean }): Promise<number> {
  const batch = await getBatch(api, id);
  if (options.json) {
    await writeOut(`${JSON.stringify(batch)}\n`);
  } else {
    const lines = [
      summaryLine(batch),
      `  model        ${batch.model}${batch.version !== undefined ? ` v${batch.version}` : ''}`,
      `  created      ${batch.createdAt}`,
      `  updated      ${batch.updatedAt}`,
    ];
    if (batch.status === 'running') {
      lines.push(
        `  paused       ${batch.paused ? 'yes' : 'no'}`,
        `  concurrency  ${batch.concurrency ?? '-'}`,
        `  rate         ${(batch.itemsPerSecond ?? 0).toFixed(1)} items/s, ETA ${etaText(batch.eta, Date.now())}`,
      );
    }
    for (const [key, value] of Object.entries(batch.metadata ?? {})) lines.push(`  metadata     ${key}=${value}`);
    if (batch.webhook) {
      lines.push(`  webhook      ${batch.webhook.url} (${batch.webhook.failedDeliveries.length} failed deliveries)`);
    }
    await writeOut(`${lines.join('\n')}\n`);
  }
  return outcomeCode(batch);
}
