// What every fault case asserts once its batch has ended: the invariants of "nothing lost, nothing silently
// wrong", checked against the real API, the real item store and the real Temporal history.
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import type { BatchSummary } from '../../src/contracts/batch.js';
import { EventType } from '../../src/contracts/event-type.js';
import type { ItemStore } from '../../src/stores/item-store.js';
import { http } from './data.js';
import { readSse } from './sse.js';
import { waitFor } from './temporal.js';

const END_EVENTS = new Set<string>([EventType.batchCompleted, EventType.batchCanceled, EventType.batchFailed]);

/** Waits for a batch to end (through the API) and returns its view. */
export async function waitForEnd(api: string, id: string, timeoutMs = 180_000): Promise<Record<string, any>> {
  return waitFor(
    `batch ${id} to end`,
    async () => {
      const res = await http(api, 'GET', `/v1/batches/${id}`);
      return res.status === 200 && res.body.status !== 'running' ? (res.body as Record<string, any>) : undefined;
    },
    timeoutMs,
    200,
  );
}

/** Every recorded result of a batch, read page by page. */
export async function storedResults(store: ItemStore, id: string) {
  const all = [];
  let cursor: number | undefined = 0;
  while (cursor !== undefined) {
    const page = await store.listResults(id, { cursor, limit: 10_000 });
    all.push(...page.results);
    cursor = page.nextCursor;
  }
  return all;
}

export interface Invariants {
  counts: Record<string, number>;
  /** Attempts recorded in the store, by item index. */
  attempts: Map<number, number>;
}

/**
 * The batch ended as `status`; succeeded + failed + canceled = total; the store holds one outcome per finished
 * item and agrees with Temporal's (the workflow's result) on every count; SSE from the start carries one item
 * event per finished item and then the end; the workflow itself completed (it did not fail).
 */
export async function assertInvariants(
  { api, client, store }: { api: string; client: Client; store: ItemStore },
  id: string,
  total: number,
  status: 'completed' | 'canceled' = 'completed',
): Promise<Invariants> {
  const view = await waitForEnd(api, id);
  assert.equal(view.status, status, JSON.stringify(view));
  const { succeeded, failed, canceled, pending, running } = view.counts;
  assert.equal(pending + running, 0, `nothing pending or running once ended: ${JSON.stringify(view.counts)}`);
  assert.equal(succeeded + failed + canceled, total, `succeeded + failed + canceled = total: ${JSON.stringify(view)}`);

  const handle = client.workflow.getHandle(batchWorkflowId(id));
  const summary = (await handle.result()) as BatchSummary; // throws if the workflow failed
  assert.equal((await handle.describe()).status.name, 'COMPLETED', 'the batch workflow completed');
  assert.deepEqual(summary.counts, view.counts, 'the API reports what Temporal reports');

  const results = await storedResults(store, id);
  const indexes = results.map((r) => r.index);
  assert.equal(new Set(indexes).size, indexes.length, 'one stored outcome per item');
  const stored = { succeeded: 0, failed: 0 };
  for (const r of results) stored[r.status]++;
  if (status === 'completed') {
    assert.deepEqual(stored, { succeeded, failed }, 'the store agrees with Temporal on every outcome');
  } else {
    // A canceled item may still have recorded the success its activity computed before the cancel reached it.
    assert.ok(stored.succeeded >= succeeded && stored.succeeded + stored.failed >= succeeded + failed);
  }

  const events = new Map<number, number>();
  let end: string | undefined;
  for await (const e of readSse(`${api}/v1/batches/${id}/events`)) {
    if (e.event === EventType.itemSucceeded || e.event === EventType.itemFailed) {
      events.set(e.data.index, (events.get(e.data.index) ?? 0) + 1);
    } else if (END_EVENTS.has(e.event)) {
      end = e.event;
      break;
    }
  }
  assert.equal(end, `batch.${status}`, 'SSE ends with the batch end');
  const twice = [...events].filter(([, n]) => n > 1).map(([i]) => i);
  assert.deepEqual(twice, [], 'SSE from the start: no item event twice');
  assert.deepEqual(
    [...events.keys()].sort((a, b) => a - b),
    indexes,
    'SSE from the start: one event per stored outcome',
  );
  return { counts: view.counts, attempts: new Map(results.map((r) => [r.index, r.attempts])) };
}

/** Logs a figure a fault case measured, so the test output keeps it (the suite's record of recovery times). */
export function figure(name: string, value: number | string, unit = ''): void {
  console.log(`# figure: ${name} = ${value}${unit ? ` ${unit}` : ''}`);
}
