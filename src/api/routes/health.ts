import { Health, KServeLive, KServeReady, Readiness, type ReadinessCheck } from '../../contracts/health.js';
import { TaskQueueType } from '../../client/task-queue-stats.js';
import { z } from 'zod';
import type { ItemStore } from '../../stores/item-store.js';
import { StoreUnavailableError } from '../../stores/store-unavailable.js';
import type { RouteDeps } from '../deps.js';
import { defineRoute, json, type ApiRoute } from '../route.js';

/** A task queue's workflow pollers seen within this time count as a worker polling. */
const POLLER_FRESH_MS = 70_000;

/** How long readiness waits for the item store's probe write; a store that takes longer is not ready. */
export const STORE_PROBE_TIMEOUT_MS = 2_000;

/**
 * Liveness, readiness and metrics, without authentication (probes and Prometheus scrape them). Readiness:
 * Temporal answers, a worker polls the batch task queue and the interactive one, and the item store takes a write;
 * otherwise 503 with Retry-After and what is missing.
 */
export const healthRoutes: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/healthz',
    operationId: 'liveness',
    summary: 'Liveness: the API process serves',
    tag: 'Operations',
    public: true,
    responses: { 200: json(Health, 'Alive.') },
    handler: (_input, { res }) => {
      res.json({ status: 'ok' } satisfies Health);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/readyz',
    operationId: 'readiness',
    summary: 'Readiness: Temporal answers, workers poll both task queues, the item store takes a write',
    tag: 'Operations',
    public: true,
    responses: {
      200: json(Readiness, 'Ready.'),
      503: json(Readiness, 'Not ready; `checks` says what is missing.', ['Retry-After']),
    },
    handler: async (_input, { res, deps }) => {
      const { ok, checks } = await readiness(deps);
      if (!ok) res.setHeader('Retry-After', '5');
      res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not_ready', checks } satisfies Readiness);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v2/health/live',
    operationId: 'kserveLive',
    summary: 'Server liveness (Open Inference Protocol)',
    tag: 'Open Inference Protocol',
    public: true,
    responses: { 200: json(KServeLive, 'Alive.') },
    handler: (_input, { res }) => {
      res.json({ live: true } satisfies KServeLive);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v2/health/ready',
    operationId: 'kserveReady',
    summary: 'Server readiness (Open Inference Protocol)',
    tag: 'Open Inference Protocol',
    public: true,
    responses: { 200: json(KServeReady, 'Ready.'), 503: json(KServeReady, 'Not ready.', ['Retry-After']) },
    handler: async (_input, { res, deps }) => {
      const { ok } = await readiness(deps);
      if (!ok) res.setHeader('Retry-After', '5');
      res.status(ok ? 200 : 503).json({ ready: ok } satisfies KServeReady);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    summary: "The API's Prometheus metrics",
    tag: 'Operations',
    public: true,
    responses: { 200: { description: 'Prometheus text exposition format.', content: { 'text/plain': z.string() } } },
    handler: async (_input, { res, deps }) => {
      res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    },
  }),
];

/** Whether Temporal answers, a worker polls each task queue and the item store takes a write, with what was seen. */
async function readiness(deps: RouteDeps): Promise<{ ok: boolean; checks: Record<string, ReadinessCheck> }> {
  const [temporal, itemStore] = await Promise.all([temporalChecks(deps), storeCheck(deps.batches.store)]);
  const checks: Record<string, ReadinessCheck> = { ...temporal, itemStore };
  return { ok: Object.values(checks).every((c) => c.ok), checks };
}

/** Temporal answers, and a worker polls the batch task queue and the interactive one. */
async function temporalChecks({ batches, config }: RouteDeps): Promise<Record<string, ReadinessCheck>> {
  const checks: Record<string, ReadinessCheck> = {};
  const service = batches.client.workflowService;
  const namespace = batches.client.options.namespace;
  for (const [name, queue] of [
    ['batchWorker', config.TASK_QUEUE],
    ['interactiveWorker', config.INTERACTIVE_TASK_QUEUE],
  ] as const) {
    try {
      const { pollers } = await service.describeTaskQueue({
        namespace,
        taskQueue: { name: queue },
        taskQueueType: TaskQueueType.workflow,
      });
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
  return checks;
}

/** The item store's probe write, waited for STORE_PROBE_TIMEOUT_MS at most (a hung store never hangs readiness). */
async function storeCheck(store: ItemStore): Promise<ReadinessCheck> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(
      () => resolve(`no answer to a write within ${STORE_PROBE_TIMEOUT_MS} ms`),
      STORE_PROBE_TIMEOUT_MS,
    );
  });
  try {
    const failure = await Promise.race([store.probe().then(() => undefined, whyNotWritten), timeout]);
    return { ok: failure === undefined, detail: `${store.backend}: ${failure ?? 'writable'}` };
  } finally {
    clearTimeout(timer);
  }
}

/** What a failed probe says: the storage fault (`disk full`, `unreachable`, ...), else the error's first line. */
function whyNotWritten(err: unknown): string {
  if (err instanceof StoreUnavailableError) return err.fault;
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
