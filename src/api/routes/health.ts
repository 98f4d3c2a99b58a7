import { Router } from 'express';
import type { AppDeps } from '../app.js';

/** A task queue's workflow pollers seen within this time count as a worker polling. */
const POLLER_FRESH_MS = 70_000;

/**
 * Liveness, readiness and metrics, without authentication (probes and Prometheus scrape them):
 * - `GET /healthz`, `GET /v2/health/live`: the API process serves.
 * - `GET /readyz`, `GET /v2/health/ready`: Temporal answers and a worker polls the batch task queue (and the
 *   interactive one); otherwise 503 with Retry-After and what is missing.
 * - `GET /metrics`: the API's Prometheus metrics.
 */
export function healthRoutes({ batches, config, metrics }: AppDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/v2/health/live', (_req, res) => {
    res.json({ live: true });
  });

  const readiness = async (): Promise<{ ok: boolean; checks: Record<string, { ok: boolean; detail: string }> }> => {
    const checks: Record<string, { ok: boolean; detail: string }> = {};
    const service = batches.client.workflowService;
    const namespace = batches.client.options.namespace;
    for (const [name, queue] of [
      ['batchWorker', config.TASK_QUEUE],
      ['interactiveWorker', config.INTERACTIVE_TASK_QUEUE],
    ] as const) {
      try {
        const { pollers } = await service.describeTaskQueue({ namespace, taskQueue: { name: queue }, taskQueueType: 1 });
        const now = Date.now();
        const fresh = (pollers ?? []).filter((p) => {
          const seconds = Number(p.lastAccessTime?.seconds ?? 0);
          return now - seconds * 1000 < POLLER_FRESH_MS;
        });
        checks.temporal = { ok: true, detail: 'reachable' };
        checks[name] = { ok: fresh.length > 0, detail: `${fresh.length} worker(s) polling task queue '${queue}'` };
      } catch (err) {
        checks.temporal = { ok: false, detail: `unreachable: ${(err as Error).message.split('\n')[0]}` };
        checks[name] = { ok: false, detail: 'unknown while Temporal is unreachable' };
      }
    }
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  };
  router.get('/readyz', async (_req, res) => {
    const { ok, checks } = await readiness();
    if (!ok) res.setHeader('Retry-After', '5');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not_ready', checks });
  });
  router.get('/v2/health/ready', async (_req, res) => {
    const { ok } = await readiness();
    if (!ok) res.setHeader('Retry-After', '5');
    res.status(ok ? 200 : 503).json({ ready: ok });
  });

  router.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
