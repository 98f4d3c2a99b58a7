import { z } from 'zod';
import { CliError, ExitCode } from './exit-code.js';

/** Where the client commands find the API when BATCHLINE_URL is unset: `npm start`'s API. */
export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

const unsetIfEmpty = (v: unknown) => (v === '' ? undefined : v);

/** The client's two variables. The server's configuration (src/config.ts) is not read: a client needs none of it. */
const ClientEnv = z.object({
  BATCHLINE_URL: z.preprocess(unsetIfEmpty, z.url({ protocol: /^https?$/ }).default(DEFAULT_API_URL)),
  BATCHLINE_API_KEY: z.preprocess(unsetIfEmpty, z.string().max(512).optional()),
});

export interface ClientSettings {
  /** The API's base URL, without a trailing slash. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when set. */
  apiKey?: string;
}

/** Reads the client's settings from `env` (the entry point passes process.env); a bad value is a usage error. */
export function clientSettings(env: Record<string, string | undefined>): ClientSettings {
  const parsed = ClientEnv.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const message =
      issue.path[0] === 'BATCHLINE_URL'
        ? `BATCHLINE_URL must be an http:// or https:// URL, not '${env.BATCHLINE_URL}'`
        : 'BATCHLINE_API_KEY is longer than 512 characters, so no API key can match it';
    throw new CliError(message, ExitCode.usage);
  }
  const { BATCHLINE_URL, BATCHLINE_API_KEY } = parsed.data;
  return { baseUrl: BATCHLINE_URL.replace(/\/+$/, ''), ...(BATCHLINE_API_KEY ? { apiKey: BATCHLINE_API_KEY } : {}) };
}
