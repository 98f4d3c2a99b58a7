import type { BatchListPage } from '../../../contracts/batch.js';
import type { BatchStatus } from '../../../contracts/status.js';
import type { ApiClient } from '../api-client.js';
import { ExitCode } from '../exit-code.js';
import { writeOut } from '../stdout.js';

export interface ListOptions {
  status?: BatchStatus;
  model?: string;
  /** Batches per page (the API's `limit`, 1-100). */
  limit?: number;
  /** The `nextCursor` a previous page gave. */
  cursor?: string;
  /** Follow `nextCursor` to the last page. */
  all?: boolean;
  json?: boolean;
}

/** `batchline ls`: the API key's batches, newest first, a page at a time (or every page with --all). */
export async function list(api: ApiClient, options: ListOptions): Promise<number> {
  const batches: BatchListPage['batches'] = [];
  let cursor = options.cursor;
  let page: BatchListPage;
  do {
    page = await api.json<BatchListPage>('GET', '/v1/batches', {
      query: { status: options.status, model: options.model, limit: options.limit, cursor },
    });
    batches.push(...page.batches);
    cursor = page.nextCursor;
  } while (options.all && cursor);
  const next = options.all ? undefined : page.nextCursor;
  if (options.json) {
    await writeOut(`${JSON.stringify({ batches, ...(next ? { nextCursor: next } : {}) })}\n`);
    return ExitCode.ok;
  }
  const rows = [
    ['ID', 'STATUS', 'MODEL', 'TOTAL', 'FAILED', 'CREATED'],
    ...batches.map((b) => [
      b.id,
      b.status,
      b.version !== undefined ? `${b.model}:${b.version}` : b.model,
      String(b.total),
      String(b.failed),
      b.createdAt,
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((r) => r[column]!.length)));
  await writeOut(
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n',
  );
  if (next) process.stderr.write(`more batches: batchline ls --cursor ${next}\n`);
  return ExitCode.ok;
}
