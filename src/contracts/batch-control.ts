import { z } from 'zod';
import { MAX_CONCURRENCY } from './limits.js';

/** What a client can tell a running batch to do. A closed set: `as const` plus a derived union. */
export const BatchControlAction = { cancel: 'cancel', pause: 'pause', resume: 'resume' } as const;
export type BatchControlAction = (typeof BatchControlAction)[keyof typeof BatchControlAction];

/** 202 of `POST /v1/batches/:id/{cancel,pause,resume}`: the signal was delivered. */
export const ControlAccepted = z
  .object({ id: z.string(), action: z.enum(BatchControlAction), accepted: z.literal(true) })
  .meta({ id: 'ControlAccepted' });
export type ControlAccepted = z.infer<typeof ControlAccepted>;

/** 200 of `POST /v1/batches/:id/retry-failed`: how many failed items were queued again. */
export const RetryFailedResponse = z
  .object({ id: z.string(), retried: z.number().int() })
  .meta({ id: 'RetryFailedResponse' });
export type RetryFailedResponse = z.infer<typeof RetryFailedResponse>;

/** `POST /v1/batches/:id/concurrency`: how many items may run at once from now on. */
export const SetConcurrencyRequest = z
  .object({ concurrency: z.number().int().min(1).max(MAX_CONCURRENCY) })
  .strict()
  .meta({ id: 'SetConcurrencyRequest' });
export type SetConcurrencyRequest = z.infer<typeof SetConcurrencyRequest>;

/** 202 of `POST /v1/batches/:id/concurrency`: the signal was delivered. */
export const ConcurrencyAccepted = z
  .object({ id: z.string(), concurrency: z.number().int(), accepted: z.literal(true) })
  .meta({ id: 'ConcurrencyAccepted' });
export type ConcurrencyAccepted = z.infer<typeof ConcurrencyAccepted>;
