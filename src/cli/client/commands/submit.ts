import fs from 'node:fs';
import type { CreateBatchResponse } from '../../../contracts/batch.js';
import type { ApiClient } from '../api-client.js';
import { CliError, ExitCode } from '../exit-code.js';
import { followBatch, outcomeCode, summaryLine } from '../follow.js';
import { createProgress } from '../progress.js';
import { writeOut } from '../stdout.js';

export interface SubmitOptions {
  model: string;
  version?: number;
  /** The batch option `itemsPerActivity`. */
  chunk?: number;
  follow?: boolean;
  json?: boolean;
}

/**
 * `batchline submit FILE|- --model M`: the file (or stdin) streamed as NDJSON to `POST /v1/batches`, read as it is
 * sent, so a file of any size never sits in memory; the model and options travel as query parameters, as NDJSON
 * submissions take them (src/contracts/batch-queries.ts).
 */
export async function submit(api: ApiClient, file: string, options: SubmitOptions): Promise<number> {
  const source = file === '-' ? process.stdin : await openFile(file);
  const created = await api.json<CreateBatchResponse>('POST', '/v1/batches', {
    query: { model: options.model, version: options.version, itemsPerActivity: options.chunk },
    stream: source,
    contentType: 'application/x-ndjson',
  });
  if (!options.follow) {
    await writeOut(options.json ? `${JSON.stringify(created)}\n` : `${created.id}\n`);
    return ExitCode.ok;
  }
  if (!options.json) await writeOut(`${created.id}\n`);
  const batch = await followBatch(api, created.id, createProgress({ stream: process.stderr }));
  await writeOut(options.json ? `${JSON.stringify(batch)}\n` : `${summaryLine(batch)}\n`);
  return outcomeCode(batch);
}

/** Opens the file, so that one that cannot be read is a usage error before anything is sent. */
async function openFile(file: string): Promise<fs.ReadStream> {
  try {
    const handle = await fs.promises.open(file, 'r');
    if ((await handle.stat()).isDirectory()) {
      await handle.close();
      throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    }
    return handle.createReadStream();
  } catch (err) {
    throw new CliError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      ExitCode.usage,
    );
  }
}
