import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { Client } from '@temporalio/client';
import { recordMissingEnd } from './client/batch-end.js';
import { connectTemporal } from './client/connection.js';
import { ensureSearchAttributes } from './client/search-attributes.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { InferenceRuntime, runtimeOptions } from './runtime/inference.js';
import { ModelRepository } from './runtime/model-repository.js';
import { openItemStore, WORKER_SQLITE_OPTIONS } from './stores/open-stores.js';
import { ErrorCode } from './contracts/http-error.js';
import { ITEM_HEARTBEAT_INTERVAL_MS } from './contracts/liveness.js';

/**
 * Where the worker finds workflow code: the prebuilt bundle from `npm run build` when present, else the workflows
 * entry file (.js when running compiled, .ts under tsx), which the worker bundles at start.
 */
export function workflowSource(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = fileURLToPath(new URL('../workflow-bundle.js', import.meta.url));
  if (fs.existsSync(bundle)) return { workflowBundle: { codePath: bundle } };
  const js = fileURLToPath(new URL('../workflows/index.js', import.meta.url));
  return { workflowsPath: fs.existsSync(js) ? js : js.replace(/\.js$/, '.ts') };
}

/** Item activities (remote and local, each) a worker runs at once for batches. */
const BATCH_SLOTS = 64;

/**
 * How long a workflow task waits on the sticky queue of the worker that last ran the workflow before any worker
 * may take it: the SDK's 10 s would stall a batch that long after its worker died. A busy but live worker that
 * misses it costs one replay of the run's history elsewhere.
 */
const STICKY_TASK_TIMEOUT_MS = 3000;

/** Online predictions take milliseconds: on SIGTERM the interactive worker lets running ones finish this long. */
const INTERACTIVE_SHUTDOWN_GRACE_MS = 5000;

/**
 * Longest one workflow activation may run in the SDK's sandbox, in wall-clock time, before the SDK stops it as a
 * deadlock (its default: 5 s; set through the SDK's `isolateExecutionTimeout`, which its WorkerOptions type does not
 * list). On a starved worker (the batch worker runs under SCHED_IDLE, behind any other work on the machine) wall
 * time says nothing about a deadlock, and when the limit fires on Node 20 the whole process can abort ("async hook
 * stack has become corrupted"), taking every batch it holds with it. The workflows are batchline's own code, which
 * always yields: minutes keep a limit for a real hang without mistaking a starved worker for one.
 */
export const ISOLATE_EXECUTION_TIMEOUT_MS = 10 * 60_000;

export interface StartedWorker {
  /** One Temporal worker per task queue polled (config.WORKER_QUEUES): batch, interactive, or both. */
  workers: Worker[];
  /** Where GET /metrics answers (the port may have been picked at random). */
  metricsUrl: string;
  /** Resolves when the worker has stopped (after shutdown() or a fatal error). */
  running: Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Connects to Temporal (retrying while it comes up), registers search attributes, and runs, on one model runtime,
 * the workers of the task queues config.WORKER_QUEUES names: the batch worker (TASK_QUEUE) and the interactive
 * worker (INTERACTIVE_TASK_QUEUE), whose INTERACTIVE_SLOTS activity slots only online predictions use, so a huge
 * batch never starves them (and, in a process of their own, never shares its event loop with one). Serves
 * GET /metrics on WORKER_METRICS_PORT (with the SDK's own metrics when `sdkMetricsUrl` names their exporter).
 */
export async function startWorker(
  config: Config,
  log: Logger,
  overrides: Partial<WorkerOptions> = {},
  options: { sdkMetricsUrl?: string } = {},
): Promise<StartedWorker> {
  limitNewStackTraces(config.WORKFLOW_STACK_TRACE_LIMIT);
  boundHeapGrowth();
  // What start-up has opened, closed in reverse if a later step fails (and the process is not simply exiting).
  const opened: (() => Promise<unknown>)[] = [];
  try {
    // The store first: a DATABASE_URL that cannot work stops the worker at once, not after Temporal's wait.
    const store = await openItemStore(config, WORKER_SQLITE_OPTIONS);
    opened.push(() => store.close());
    const connection = await connectWithRetry(config.TEMPORAL_ADDRESS, log);
    opened.push(() => connection.close());
    const admin = await connectTemporal(config.TEMPORAL_ADDRESS);
    opened.push(() => admin.close());
    const added = await ensureSearchAttributes(admin, config.TEMPORAL_NAMESPACE);
    if (added.length > 0) log.info({ added }, 'registered search attributes');
    const metrics = new Metrics('worker');
    // Only for batches that closed without recording their end (terminated): webhook deliveries still finish.
    const temporal = new Client({ connection: admin, namespace: config.TEMPORAL_NAMESPACE });
    const runtime = new InferenceRuntime(new ModelRepository(config.MODEL_REPOSITORY), {
      ...runtimeOptions(config),
      metrics,
    });
    opened.push(() => runtime.close());
    // Models load while the worker connects; an item arriving first waits on the same load.
    void runtime.preload().then((failed) => {
      for (const f of failed) log.warn(f, 'model did not load at start; it is tried again on its next request');
    });
    // Spread in: an option the SDK honours but its WorkerOptions type does not name.
    const sandboxLimit = { isolateExecutionTimeout: ISOLATE_EXECUTION_TIMEOUT_MS };
    const shared: Partial<WorkerOptions> = {
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      activities: createActivities({
        runtime,
        store,
        metrics,
        webhooks: {
          recordMissingEnd: (id) => recordMissingEnd(temporal, store, id),
          allowedCidrs: config.WEBHOOK_ALLOWED_CIDRS,
        },
      }),
      // Heartbeats reach the server at the cadence the item activities' heartbeat timeout is built on.
      maxHeartbeatThrottleInterval: ITEM_HEARTBEAT_INTERVAL_MS,
      // A workflow task waiting on the sticky queue of a worker that died moves to any worker after this long.
      stickyQueueScheduleToStartTimeout: STICKY_TASK_TIMEOUT_MS,
      shutdownGraceTime: INTERACTIVE_SHUTDOWN_GRACE_MS,
      ...sandboxLimit,
      ...(overrides.workflowBundle ? {} : workflowSource()),
      ...overrides,
    };
    const workers: Worker[] = [];
    if (config.WORKER_QUEUES !== 'interactive') {
      workers.push(
        await Worker.create({
          ...shared,
          taskQueue: config.TASK_QUEUE,
          maxConcurrentActivityTaskExecutions: BATCH_SLOTS,
          maxConcurrentLocalActivityExecutions: BATCH_SLOTS, // batches with itemActivities 'local'
          // On SIGTERM running items are cancelled at once, so their attempts fail now and run again on another
          // worker, instead of holding the batch's window until they finish or time out.
          shutdownGraceTime: 0,
        }),
      );
    }
    if (config.WORKER_QUEUES !== 'batch') {
      workers.push(
        await Worker.create({
          ...shared,
          taskQueue: config.INTERACTIVE_TASK_QUEUE,
          maxConcurrentActivityTaskExecutions: config.INTERACTIVE_SLOTS,
        }),
      );
    }
    const metricsServer = await serveMetrics(metrics, config.WORKER_METRICS_PORT, options.sdkMetricsUrl);
    const metricsUrl = `http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}/metrics`;
    log.info(
      {
        taskQueues: workers.map((w) => w.options.taskQueue),
        address: config.TEMPORAL_ADDRESS,
        itemStore: store.backend,
        metricsUrl,
      },
      'worker started',
    );
    const running = Promise.all(workers.map((w) => w.run()))
      .then(() => undefined)
      .finally(async () => {
        for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
        await new Promise((r) => metricsServer.close(r));
        await runtime.close();
        await admin.close();
        await store.close();
        await connection.close();
        log.info('worker stopped');
      });
    return {
      workers,
      metricsUrl,
      running,
      shutdown: async () => {
        for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
        await running;
      },
    };
  } catch (err) {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    throw err;
  }
}

/**
 * Sets the stack-trace depth of every JavaScript realm this process creates from now on: the workflow threads (where
 * the SDK captures a stack per workflow promise), their workflow sandboxes, and the inference threads (which report
 * errors by message only). The main thread's realm exists already and keeps its depth, so activity errors and logs
 * keep full stack traces. A V8 flag is the one knob that reaches the SDK's own threads.
 */
function limitNewStackTraces(frames: number): void {
  v8.setFlagsFromString(`--stack-trace-limit=${frames}`);
}

/**
 * After each full collection V8 lets the old generation grow to this much over what survived it (1 + p/100 times its
 * live size), where by default it picks a factor from 1.1 to 4 by how cheap collecting has been: through a long batch
 * it settles near the top, and a worker's heap then held about 60 MiB more through a 1M-item batch than through a
 * 100k one, for the same live size. Twice the live size keeps a worker's memory flat whatever the batch's size, for a
 * full collection about every half second of a chunked batch (BENCHMARKS.md).
 */
const HEAP_GROWING_PERCENT = 100;

/** Bounds the old generation's growth (HEAP_GROWING_PERCENT) for every realm of this process. */
function boundHeapGrowth(): void {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/** GET /metrics: this process's metrics, then the Temporal SDK's (fetched from its exporter) when known. */
async function serveMetrics(metrics: Metrics, port: number, sdkMetricsUrl?: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: ErrorCode.notFound, message: 'GET /metrics' } }));
      return;
    }
    void (async () => {
      let text = await metrics.registry.metrics();
      if (sdkMetricsUrl) {
        text += await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2000) })
          .then((r) => r.text())
          .catch(() => '# Temporal SDK metrics unavailable\n');
      }
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
    })().catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', resolve);
  });
  return server;
}

async function connectWithRetry(address: string, log: Logger, timeoutMs = 60_000): Promise<NativeConnection> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await NativeConnection.connect({ address });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      if (attempt === 1) log.warn({ address }, 'Temporal not reachable yet; retrying');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
