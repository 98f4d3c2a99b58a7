// What the job-queue peers of the benchmark (BullMQ, graphile-worker) share: their worker child processes (ready
// when they say so over IPC, stopped by message) and following a batch's outcomes through the item store.
import type { ChildProcess } from 'node:child_process';
import type { ItemStore } from '../../src/stores/item-store.js';

/** Resolves with `child` once it sends its first IPC message (ready); rejects if it exits first or takes 60 s. */
export function untilReady(child: ChildProcess, name: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the ${name} worker process did not get ready within 60 s`));
    }, 60_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the ${name} worker process exited with ${code ?? signal} before it was ready`));
    });
  });
}

/** Asks a worker process to stop (IPC `stop`, else SIGTERM), SIGKILL after 15 s; resolves once it has exited. */
export async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  if (child.connected) child.send({ type: 'stop' });
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Follows the batch's event log until every item has an outcome. Rejects when a worker process dies or no
 * outcome arrives for `stallTimeoutMs`.
 */
export async function waitForOutcomes(
  store: ItemStore,
  batchId: string,
  total: number,
  children: ChildProcess[],
  stallTimeoutMs: number,
  name: string,
): Promise<void> {
  const done = new Set<number>();
  let seq = 0;
  let progressAt = Date.now();
  while (done.size < total) {
    const events = await store.listEvents(batchId, seq, 10_000);
    for (const e of events) if (e.kind === 'item') done.add(e.index);
    if (events.length > 0) {
      seq = events[events.length - 1]!.seq;
      progressAt = Date.now();
      continue;
    }
    const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead)
      throw new Error(
        `a ${name} worker process (pid ${dead.pid}) exited with ${dead.exitCode ?? dead.signalCode}; ${done.size}/${total} items done`,
      );
    if (Date.now() - progressAt > stallTimeoutMs) {
      throw new Error(`no result stored for ${stallTimeoutMs} ms; ${done.size}/${total} items done`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
