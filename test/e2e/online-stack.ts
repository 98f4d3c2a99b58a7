// The stack the online-prediction tests share: the real dev server, a worker whose activities run the real model
// runtime behind a gate that holds marked items until the test lets them go, and the API with two tenants.
import { Client } from '@temporalio/client';
import { createActivities } from '../../activities/index.js';
import type { ItemInputs, ItemResult } from '../../src/contracts/batch.js';
import type { Config } from '../../src/config.js';
import { InferenceRuntime } from '../../src/runtime/inference.js';
import type { RunHandler } from '../../src/runtime/inference.js';
import { inferEachAlone } from '../helpers/fake-model.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { itemStoreFile, SqliteItemStore } from '../../src/stores/sqlite-item-store.js';
import { startWorker, type StartedWorker } from '../../src/worker.js';
import { http } from '../helpers/data.js';
import {
  quietTemporalLogs,
  startTestTemporal,
  testConfig,
  testLog,
  workflowBundle,
  type TestTemporal,
} from '../helpers/temporal.js';
import { connectTemporal } from '../../src/client/connection.js';

export const ACME = 'key-aaaaaaaaaaaaaaaa';
export const GLOBEX = 'key-bbbbbbbbbbbbbbbb';

/** A digits item whose first pixel is HELD waits in the gate until released (a deliberately slow item). */
export const HELD = -1;

/**
 * The real runtime, except that items marked HELD wait while the gate is shut (as it starts), until open():
 * a slow item on demand, with no fixed sleep anywhere. Held items never reach the runtime while they wait, so
 * they take an activity slot and nothing else.
 */
export class GatedRuntime {
  /** Items waiting at the gate right now. */
  held = 0;
  private isOpen = false;
  private waiting: (() => void)[] = [];

  constructor(readonly inner: InferenceRuntime) {}

  async infer(model: string, version: number | undefined, inputs: ItemInputs): Promise<ItemResult> {
    const values = inputs.input;
    if (!this.isOpen && Array.isArray(values) && values[0] === HELD) {
      this.held++;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      this.held--;
    }
    return this.inner.infer(model, version, inputs);
  }

  /** The real runtime's inferMany for the items that need not wait; each marked item runs alone, after its wait. */
  async inferMany(model: string, version: number | undefined, inputs: ItemInputs[], onRun: RunHandler): Promise<void> {
    const marked = (i: ItemInputs) => !this.isOpen && Array.isArray(i.input) && i.input[0] === HELD;
    const free = inputs.flatMap((i, position) => (marked(i) ? [] : [position]));
    const held = inputs.flatMap((i, position) => (marked(i) ? [position] : []));
    /** onRun for a subset of the inputs: its positions mapped back to the whole. */
    const within =
      (subset: number[]): RunHandler =>
      (positions, outcomes) =>
        onRun(
          positions.map((p) => subset[p]!),
          outcomes,
        );
    const pick = (subset: number[]) => subset.map((p) => inputs[p]!);
    await Promise.all([
      this.inner.inferMany(model, version, pick(free), within(free)),
      inferEachAlone((m, v, i) => this.infer(m, v, i), model, version, pick(held), within(held)),
    ]);
  }

  /** From now on marked items wait. */
  shut(): void {
    this.isOpen = false;
  }

  /** Lets the waiting items go, and every marked item after them until shut() again. */
  open(): void {
    this.isOpen = true;
    this.waiting.splice(0).forEach((resolve) => resolve());
  }
}

export interface OnlineStack {
  temporal: TestTemporal;
  config: Config;
  gate: GatedRuntime;
  worker: StartedWorker;
  api: StartedServer;
  client: Client;
  /** A JSON request as tenant acme (or with the given API key). */
  call(
    method: string,
    route: string,
    body?: unknown,
    headers?: Record<string, string>,
    key?: string,
  ): ReturnType<typeof http>;
  /** The API's value of one Prometheus sample, e.g. `prediction_requests_total{source="sync"}` (0 if absent). */
  metric(sample: string): Promise<number>;
  close(): Promise<void>;
}

/** `env`: more configuration, e.g. WEBHOOK_ALLOWED_CIDRS for a test's own webhook receiver. */
export async function startOnlineStack(env: Record<string, string> = {}): Promise<OnlineStack> {
  quietTemporalLogs();
  const temporal = await startTestTemporal();
  const config = testConfig(temporal.address, {
    API_KEYS: `${ACME}=acme,${GLOBEX}=globex`,
    INTERACTIVE_TASK_QUEUE: `interactive-${process.pid}-${Date.now()}`,
    ...env,
  });
  const store = new SqliteItemStore(itemStoreFile(config));
  const gate = new GatedRuntime(new InferenceRuntime(new ModelRepository(config.MODEL_REPOSITORY), { threads: 1 }));
  const worker = await startWorker(config, testLog, {
    workflowBundle: await workflowBundle(),
    activities: createActivities({ runtime: gate, store, webhooks: { allowedCidrs: config.WEBHOOK_ALLOWED_CIDRS } }),
  });
  const api = await startServer(config, testLog);
  const client = new Client({ connection: await connectTemporal(temporal.address) });
  return {
    temporal,
    config,
    gate,
    worker,
    api,
    client,
    call: (method, route, body, headers = {}, key = ACME) =>
      http(api.url, method, route, body, { authorization: `Bearer ${key}`, ...headers }),
    async metric(sample) {
      const text = await (await fetch(`${api.url}/metrics`)).text();
      const [name, labels = ''] = sample.split(/[{}]/);
      for (const line of text.split('\n')) {
        const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
        const has = (m?.[2] ?? '').split(',');
        if (
          m &&
          m[1] === name &&
          labels
            .split(',')
            .filter(Boolean)
            .every((l) => has.includes(l))
        )
          return Number(m[3]);
      }
      return 0;
    },
    async close() {
      gate.open();
      await api.close();
      await worker.shutdown();
      await gate.inner.close();
      await store.close();
      await client.connection.close();
      await temporal.stop();
    },
  };
}

/** Predict workflows started so far, as Temporal's visibility counts them. */
export async function countTasks(client: Client): Promise<number> {
  return (await client.workflow.count(`WorkflowType = 'predictWorkflow'`)).count;
}
