import { z } from 'zod';

/** `GET /healthz`: the API process serves. */
export const Health = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });
export type Health = z.infer<typeof Health>;

/** One readiness check: whether it passed, and what was seen. */
export const ReadinessCheck = z.object({ ok: z.boolean(), detail: z.string() });
export type ReadinessCheck = z.infer<typeof ReadinessCheck>;

/**
 * `GET /readyz`: ready when every check passes: `temporal` (it answers), `batchWorker` and `interactiveWorker` (a
 * worker polls each task queue), `itemStore` (it takes a write, e.g. `sqlite: writable`, or `sqlite: disk full`).
 * `checks` says what is missing.
 */
export const Readiness = z
  .object({ status: z.enum(['ready', 'not_ready']), checks: z.record(z.string(), ReadinessCheck) })
  .meta({ id: 'Readiness' });
export type Readiness = z.infer<typeof Readiness>;

/** `GET /v2/health/live` (Open Inference Protocol). */
export const KServeLive = z.object({ live: z.boolean() }).meta({ id: 'KServeLive' });
export type KServeLive = z.infer<typeof KServeLive>;

/** `GET /v2/health/ready` (Open Inference Protocol). */
export const KServeReady = z.object({ ready: z.boolean() }).meta({ id: 'KServeReady' });
export type KServeReady = z.infer<typeof KServeReady>;
