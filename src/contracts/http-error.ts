import { z } from 'zod';

/** The wire codes of the one HTTP error shape; `internal` is the 500 that never shows a stack trace. */
export const ErrorCode = {
  invalidRequest: 'invalid_request',
  unauthorized: 'unauthorized',
  notFound: 'not_found',
  methodNotAllowed: 'method_not_allowed',
  conflict: 'conflict',
  payloadTooLarge: 'payload_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  unprocessable: 'unprocessable',
  rateLimited: 'rate_limited',
  unavailable: 'unavailable',
  timeout: 'timeout',
  internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** One problem with a request: where (a field path, `line.<n>` for NDJSON, or a header name) and what. */
export const ErrorDetail = z
  .object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() })
  .strict()
  .meta({ id: 'ErrorDetail' });
export type ErrorDetail = z.infer<typeof ErrorDetail>;

/** Every failed /v1 and probe request: `{ error: { code, message, details? } }` (src/api/middleware/errors.ts). */
export const ErrorBody = z
  .object({
    error: z
      .object({ code: z.enum(ErrorCode), message: z.string(), details: z.array(ErrorDetail).optional() })
      .strict(),
  })
  .strict()
  .meta({ id: 'ErrorBody' });
export type ErrorBody = z.infer<typeof ErrorBody>;
