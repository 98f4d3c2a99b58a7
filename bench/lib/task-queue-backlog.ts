// A task queue's backlog over time, from Temporal's own description of the queue (DescribeTaskQueue with
// reportStats): how many tasks wait for a worker and how long the oldest has waited, for its workflow tasks and its
// activity tasks, sampled once a second. Where online predictions wait when they wait in Temporal.
import type { Client } from '@temporalio/client';
import { describeBacklog, type Backlog } from '../../src/client/task-queue-stats.js';

export type { Backlog };

export interface BacklogSample {
  /** Wall clock, ms since epoch. */
  atMs: number;
  workflow?: Backlog;
  activity?: Backlog;
  /** Why the description failed (the sample has no figures then). */
  error?: string;
}

export interface BacklogSampler {
  readonly samples: BacklogSample[];
  /**
   * Waits until a sample taken at or after `sinceMs` shows no backlog of either type; resolves with that sample's
   * time, or undefined after `capMs`.
   */
  untilEmpty(sinceMs: number, capMs: number): Promise<number | undefined>;
  stop(): Promise<void>;
}

async function describe(client: Client, taskQueue: string, type: 'workflow' | 'activity'): Promise<Backlog> {
  const { count, ageMs } = await describeBacklog(client, taskQueue, type);
  return { count, ageMs };
}

/** Samples `taskQueue`'s backlog every `intervalMs` (default 1 s) until stop(). */
export function sampleBacklog(client: Client, taskQueue: string, intervalMs = 1000): BacklogSampler {
  const samples: BacklogSample[] = [];
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const next = Date.now() + intervalMs;
      const atMs = Date.now();
      try {
        const [workflow, activity] = await Promise.all([
          describe(client, taskQueue, 'workflow'),
          describe(client, taskQueue, 'activity'),
        ]);
        samples.push({ atMs, workflow, activity });
      } catch (err) {
        samples.push({ atMs, error: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
  };
  const running = loop();
  return {
    samples,
    async untilEmpty(sinceMs, capMs) {
      for (let seen = 0; Date.now() - sinceMs <= capMs;) {
        for (; seen < samples.length; seen++) {
          const s = samples[seen]!;
          if (s.atMs >= sinceMs && s.workflow?.count === 0 && s.activity?.count === 0) return s.atMs;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      return undefined;
    },
    async stop() {
      stopped = true;
      await running;
    },
  };
}

/** The largest backlog count and age seen among the samples, per queue type. */
export function maxBacklog(samples: BacklogSample[]): Record<'workflow' | 'activity', Backlog> {
  const max = (type: 'workflow' | 'activity') => ({
    count: Math.max(0, ...samples.map((s) => s[type]?.count ?? 0)),
    ageMs: Math.max(0, ...samples.map((s) => s[type]?.ageMs ?? 0)),
  });
  return { workflow: max('workflow'), activity: max('activity') };
}
