import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorBody } from '../../contracts/http-error.js';
import type { ClientSettings } from './client-env.js';
import { CliError, ExitCode } from './exit-code.js';

export type Query = Record<string, string | number | undefined>;

export interface RequestOptions {
  query?: Query;
  /** A JSON body. */
  json?: unknown;
  /** A streamed body (with `contentType`), sent as it is read, with backpressure: never held whole in memory. */
  stream?: Readable;
  contentType?: string;
  /** What a 404 means here, e.g. `batch '0a1b...'`: the one-line message names it. */
  subject?: string;
}

/**
 * The REST API as the client commands see it: every answer that is not a 2xx, and every connection fault, becomes
 * a CliError with one line that says what to do (set BATCHLINE_URL, set BATCHLINE_API_KEY, the API's own message).
 */
export class ApiClient {
  constructor(readonly settings: ClientSettings) {}

  /** Sends a request; resolves with a 2xx response whose body is still unread. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const url = new URL(`${this.settings.baseUrl}${path}`);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { accept: 'application/json, application/x-ndjson' };
    if (this.settings.apiKey) headers.authorization = `Bearer ${this.settings.apiKey}`;
    let body: string | undefined;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.stream) {
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
    }
    let res: Response;
    try {
      res = options.stream
        ? await sendStream(url, method, headers, options.stream)
        : await fetch(url, { method, headers, body });
    } catch (err) {
      throw this.connectionError(err);
    }
    if (res.ok) return res;
    throw await this.answerError(res, options.subject);
  }

  /** A request whose 2xx answer is JSON. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, options);
    try {
      return (await res.json()) as T;
    } catch (err) {
      throw this.connectionError(err);
    }
  }

  /** The line for a fault below HTTP: no answer at all, or an answer cut off. */
  connectionError(err: unknown): CliError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const code = cause?.code ?? (err as { code?: string }).code;
    const why =
      code === 'ECONNREFUSED'
        ? 'connection refused'
        : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? 'unknown host'
          : (code ?? cause?.message ?? (err as Error).message);
    return new CliError(
      `cannot reach the batchline API at ${this.settings.baseUrl} (${why}); BATCHLINE_URL sets its address`,
      ExitCode.api,
    );
  }

  private async answerError(res: Response, subject: string | undefined): Promise<CliError> {
    const text = await res.text().catch(() => '');
    let message = text.trim().split('\n')[0]?.slice(0, 300) || res.statusText;
    let code: string | undefined;
    try {
      const parsed = ErrorBody.safeParse(JSON.parse(text));
      if (parsed.success) ({ message, code } = parsed.data.error);
    } catch {
      // not the API's error shape (a proxy's page, say): its first line is the message
    }
    const fail = (line: string) => new CliError(line, ExitCode.api, res.status);
    if (res.status === 401) {
      return fail(
        this.settings.apiKey
          ? `the API at ${this.settings.baseUrl} refused the API key (401); set BATCHLINE_API_KEY to a valid key`
          : `the API at ${this.settings.baseUrl} needs an API key (401); set BATCHLINE_API_KEY`,
      );
    }
    if (res.status === 404 && subject) return fail(`${subject} not found (404): no such id for this API key`);
    return fail(`the API answered ${res.status}${code ? ` ${code}` : ''}: ${message}`);
  }
}

/** Statuses whose answer has no body (a Response refuses one). */
const NO_BODY = new Set([101, 204, 205, 304]);

/**
 * Sends a streamed body with node:http and its backpressure, answering as fetch would. fetch (undici) with a
 * streamed body held most of a large file in memory while sending it (BENCHMARKS.md, CLI submit); piping the file
 * into the request reads it only as fast as the socket takes it. An answer that comes before the body has all gone
 * (a bad line refused) is the answer; the rest of the body is then not sent.
 */
function sendStream(url: URL, method: string, headers: Record<string, string>, body: Readable): Promise<Response> {
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers });
    req.on('error', reject);
    req.on('response', (res) => {
      const status = res.statusCode ?? 502;
      const answerHeaders = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        if (value !== undefined) answerHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const answer = NO_BODY.has(status) ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
      if (answer === null) res.resume();
      resolve(new Response(answer, { status, statusText: res.statusMessage ?? '', headers: answerHeaders }));
    });
    pipeline(body, req).catch(reject); // after the answer, a rejection changes nothing
  });
}
