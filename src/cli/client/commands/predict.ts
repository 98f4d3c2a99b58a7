import fs from 'node:fs';
import type { PredictResponse } from '../../../contracts/predict.js';
import type { ApiClient } from '../api-client.js';
import { CliError, ExitCode } from '../exit-code.js';
import { writeOut } from '../stdout.js';

export interface PredictOptions {
  /** The item's inputs as JSON (`{"input":[...]}`), or `@FILE` to read them from a file. */
  input: string;
  version?: number;
  timeout?: number;
  json?: boolean;
}

/** `batchline predict MODEL --input JSON`: one sync prediction (`POST /v1/predict`). */
export async function predict(api: ApiClient, model: string, options: PredictOptions): Promise<number> {
  const inputs = parseInputs(options.input);
  const answer = await api.json<PredictResponse>('POST', '/v1/predict', {
    json: { model, inputs, version: options.version, timeoutMs: options.timeout },
  });
  if (options.json) {
    await writeOut(`${JSON.stringify(answer)}\n`);
  } else {
    const { result } = answer;
    const shown = result.label ?? JSON.stringify(result.embedding ? { embedding: result.embedding } : result.outputs);
    await writeOut(`${shown}\t(${result.model} v${result.version}, task ${answer.taskId})\n`);
  }
  return ExitCode.ok;
}

function parseInputs(raw: string): unknown {
  let text = raw;
  if (raw.startsWith('@')) {
    try {
      text = fs.readFileSync(raw.slice(1), 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${raw.slice(1)}: ${(err as NodeJS.ErrnoException).code}`, ExitCode.usage);
    }
  }
  let inputs: unknown;
  try {
    inputs = JSON.parse(text);
  } catch (err) {
    throw new CliError(`--input is not JSON: ${(err as Error).message}`, ExitCode.usage);
  }
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) {
    throw new CliError('--input must be a JSON object of the model\'s inputs, e.g. {"input":[...]}', ExitCode.usage);
  }
  return inputs;
}
