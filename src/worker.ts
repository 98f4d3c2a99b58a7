import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { ensureSearchAttributes } from './client/search-attributes.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { InferenceRuntime } from './runtime/inference.js';
import { ModelRepository } from './runtime/model-repository.js';
import { itemStoreFile, SqliteItemStore } from './stores/sqlite-item-store.js';

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

export interface StartedWorker {
  worker: Worker;
  /** Resolves when the worker has stopped (after shutdown() or a fatal error). */
  running: Promise<void>;
  shutdown(): Promise<void>;
}

/** Connects to Temporal (retrying while it comes up), registers search attributes, and runs the batch worker. */
export async function startWorker(
  config: Config,
  log: Logger,
  overrides: Partial<WorkerOptions> = {},
): Promise<StartedWorker> {
  const connection = await connectWithRetry(config.TEMPORAL_ADDRESS, log);
  const admin = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  try {
    const added = await ensureSearchAttributes(admin, config.TEMPORAL_NAMESPACE);
    if (added.length > 0) log.info({ added }, 'registered search attributes');
  } finally {
    await admin.close();
  }
  const store = new SqliteItemStore(itemStoreFile(config));
  const runtime = new InferenceRuntime(new ModelRepository(config.MODEL_REPOSITORY), {
    threads: config.INFERENCE_THREADS,
    intraOpNumThreads: config.ORT_INTRA_OP_THREADS,
    allowSpinning: config.ORT_ALLOW_SPINNING,
    dynamicBatching: config.DYNAMIC_BATCHING,
  });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TASK_QUEUE,
    activities: createActivities({ runtime, store }),
    maxConcurrentActivityTaskExecutions: 64,
    shutdownGraceTime: '10s',
    ...(overrides.workflowBundle ? {} : workflowSource()),
    ...overrides,
  });
  log.info({ taskQueue: config.TASK_QUEUE, address: config.TEMPORAL_ADDRESS }, 'worker started');
  const running = worker.run().finally(async () => {
    await runtime.close();
    store.close();
    await connection.close();
    log.info('worker stopped');
  });
  return {
    worker,
    running,
    shutdown: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
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
