import readline from 'node:readline';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { ItemOutcome } from '../../../contracts/batch.js';
import type { ApiClient } from '../api-client.js';
import { CliError, ExitCode } from '../exit-code.js';
import { batchSubject, getBatch, outcomeCode } from '../follow.js';
import { writeOut } from '../stdout.js';

export interface ResultsOptions {
  /** Until the batch ends, each outcome as it is recorded. */
  follow?: boolean;
  /** Failed items only (the dead-letter set). */
  failed?: boolean;
  /** Start at this item index: what an interrupted run said to resume with. Not with `follow`. */
  cursor?: number;
}

/**
 * `batchline results ID`: `GET /v1/batches/:id/results` to stdout as it came, one NDJSON line per item, so
 * `> out.jsonl` works. Without --follow the lines come in index order, which makes a run resumable: a run cut off
 * says which `--cursor` carries on, and lines below it are not written again.
 */
export async function results(api: ApiClient, id: string, options: ResultsOptions): Promise<number> {
  const res = await api.request('GET', `/v1/batches/${encodeURIComponent(id)}/results`, {
    query: { follow: options.follow ? 'true' : undefined, status: options.failed ? 'failed' : undefined },
    subject: batchSubject(id),
  });
  const from = options.cursor ?? 0;
  let next = from;
  let sawFailure = false;
  try {
    const lines = readline.createInterface({
      input: Readable.fromWeb(res.body as NodeReadableStream<Uint8Array>),
      crlfDelay: Infinity,
    });
    for await (const line of lines) {
      if (!line.trim()) continue;
      const outcome = JSON.parse(line) as ItemOutcome;
      if (outcome.index < from) continue;
      await writeOut(`${line}\n`);
      if (outcome.status === 'failed') sawFailure = true;
      next = outcome.index + 1;
    }
  } catch (err) {
    const lost = api.connectionError(err).message;
    throw new CliError(
      options.follow ? lost : `${lost}; results from item ${next} on were not written: resume with --cursor ${next}`,
      ExitCode.api,
    );
  }
  if (sawFailure) return ExitCode.itemsFailed;
  // A followed stream ends with the batch: its end decides (a canceled batch may have written no failure).
  return options.follow ? outcomeCode(await getBatch(api, id)) : ExitCode.ok;
}
