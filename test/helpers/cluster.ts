// A real batchline cluster for tests: src/cluster/cluster.ts (what `batchline cluster` runs) with a local PostgreSQL,
// the Temporal server on it and batchline's processes run from source, on free ports in a temp directory. Plus what
// the cluster tests read from outside: worker identities, the item activities of a history, the item store's rows,
// the Temporal CLI's workflow list, and the process table.
import { TaskQueueType } from '../../src/client/task-queue-stats.js';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time.js';
import pg from 'pg';
import { resolveTemporalServer } from '../../scripts/temporal-server.mjs';
import { resolveTemporalCli } from '../../src/cli/dev.js';
import { startCluster, type Cluster, type ClusterProcess } from '../../src/cluster/cluster.js';
import { ROOT, tempDir } from './temporal.js';

const execFileAsync = promisify(execFile);

/** `batchline` from source, as spawnBatchline runs it: tsx and the repo's tsconfig by absolute path, any cwd. */
export const batchlineFromSource = {
  command: [process.execPath, '--import', import.meta.resolve('tsx'), path.join(ROOT, 'src', 'cli', 'main.ts')],
  env: { TSX_TSCONFIG_PATH: path.join(ROOT, 'tsconfig.json') },
};

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    // 0.0.0.0: a worker's /metrics listens there, and a port taken on loopback is refused here too.
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

/**
 * `count` consecutive ports free right now, from [min, max]: the cluster gives API k the first API port + k - 1 and
 * worker k the first metrics port + k - 1. Below 32768 by default: the Temporal server keeps its ports in a smallint.
 */
export async function freePortRun(count: number, min = 20_000, max = 32_767): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = min + Math.floor(Math.random() * (max - min - count));
    let free = true;
    for (let k = 0; k < count && free; k++) free = await portFree(base + k);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports between ${min} and ${max}`);
}

/**
 * A temp directory for a cluster's state. As root, PostgreSQL runs as a `postgres` user, which must be able to reach
 * its data directory inside: a temp dir is made 0700.
 */
export function clusterDataDir(prefix: string): string {
  const dir = tempDir(prefix);
  if (process.getuid?.() === 0) fs.chmodSync(dir, 0o755);
  return dir;
}

export interface TestCluster {
  cluster: Cluster;
  /** Its state: postgres/, temporal/, one directory per batchline process. */
  dir: string;
  /** The namespace and batch task queue its processes use. */
  namespace: string;
  taskQueue: string;
  /** The batchline process named `name` (worker-1, api-2, ...). */
  process(name: string): ClusterProcess;
  /** Where the worker named `name` serves GET /metrics. */
  metricsUrl(name: string): string;
  /** Batchline processes that exited while the cluster ran (killed by a test, or dead on their own). */
  exits: { name: string; pid?: number; code: number | null; signal: NodeJS.Signals | null }[];
  /** The last lines of every process's output, each behind its name (for failure messages). */
  output(): string;
  /** Stops everything and removes its directory. */
  stop(): Promise<void>;
}

/** Starts a cluster of `workers` batch workers (and the interactive one) and `apis` APIs on the real binaries. */
export async function startTestCluster(options: { workers: number; apis: number }): Promise<TestCluster> {
  const dir = clusterDataDir('cluster');
  const namespace = 'default';
  const taskQueue = `cluster-test-${process.pid}`;
  const lines: string[] = [];
  const exits: TestCluster['exits'] = [];
  const [temporalPort, apiPort, workerMetricsPort] = [
    await freePortRun(1),
    await freePortRun(options.apis),
    await freePortRun(options.workers + 1),
  ];
  let cluster: Cluster;
  try {
    cluster = await startCluster({
      root: ROOT,
      dir,
      binaries: await resolveTemporalServer(),
      batchline: batchlineFromSource.command,
      workers: options.workers,
      apis: options.apis,
      temporalPort,
      apiPort,
      workerMetricsPort,
      namespace,
      modelRepository: path.join(ROOT, 'models'),
      env: {
        ...batchlineFromSource.env,
        TASK_QUEUE: taskQueue,
        INTERACTIVE_TASK_QUEUE: `${taskQueue}-interactive`,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      },
      onLine: (source, line) => {
        lines.push(`[${source}] ${line}`);
        if (lines.length > 300) lines.shift();
      },
      onExit: (proc, code, signal) => exits.push({ name: proc.name, pid: proc.child.pid, code, signal }),
    });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${lines.join('\n')}`);
  }
  const byName = (name: string) => {
    const found = cluster.processes.find((p) => p.name === name);
    if (!found) throw new Error(`no process ${name} in the cluster`);
    return found;
  };
  return {
    cluster,
    dir,
    namespace,
    taskQueue,
    process: byName,
    metricsUrl(name) {
      // Worker k's metrics port is the first one + k - 1; the interactive worker takes the one after the last.
      const k = name === 'interactive' ? options.workers + 1 : Number(/^worker-(\d+)$/.exec(name)?.[1]);
      if (!(k >= 1 && k <= options.workers + 1)) throw new Error(`no worker ${name}`);
      return `http://127.0.0.1:${workerMetricsPort + k - 1}/metrics`;
    },
    exits,
    output: () => lines.join('\n'),
    async stop() {
      await cluster.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The identity a batchline worker process polls and completes activities under (the SDK's default). */
export function workerIdentity(proc: ClusterProcess): string {
  return `${proc.child.pid}@${os.hostname()}`;
}

/** The identities polling `taskQueue` for activities (a worker that died stays listed for a minute or two). */
export async function activityPollers(client: Client, namespace: string, taskQueue: string): Promise<string[]> {
  const res = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: TaskQueueType.activity,
  });
  return (res.pollers ?? []).map((p) => p.identity ?? '');
}

/** A worker's `batch_items_finished_total{state="succeeded"}`: the items whose success that process recorded. */
export async function itemsRecorded(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
  const line = /^batch_items_finished_total\{[^}]*state="succeeded"[^}]*\} (\d+)$/m.exec(text);
  return line ? Number(line[1]) : 0;
}

/** One item activity (inferItem: one item; inferChunk: a chunk) of a batch's history, as it ended. */
export interface ItemActivity {
  activityId: string;
  type: string;
  /** The items it covers: [start, start + count). */
  start: number;
  count: number;
  scheduledAtMs: number;
  /** Its last attempt (1 when it never ran again). */
  attempt: number;
  /** Why its last attempt was needed: 'timeout', or the failure's message. */
  retriedAfter?: string;
  /** The identity of the worker that completed it, and when the server recorded that. */
  completedBy?: string;
  completedAtMs?: number;
}

/** The item activities of a workflow run's history, by activity id. */
export async function itemActivities(handle: WorkflowHandle): Promise<Map<string, ItemActivity>> {
  const events = (await handle.fetchHistory()).events ?? [];
  const byScheduledEvent = new Map<string, ItemActivity>();
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    const type = scheduled?.activityType?.name;
    if (scheduled && (type === 'inferItem' || type === 'inferChunk')) {
      const input = defaultPayloadConverter.fromPayload<{ index?: number; start?: number; count?: number }>(
        scheduled.input!.payloads![0]!,
      );
      byScheduledEvent.set(String(e.eventId), {
        activityId: scheduled.activityId!,
        type,
        start: input.start ?? input.index!,
        count: input.count ?? 1,
        scheduledAtMs: tsToMs(e.eventTime),
        attempt: 0,
      });
    }
    const started = e.activityTaskStartedEventAttributes;
    const a = started && byScheduledEvent.get(String(started.scheduledEventId));
    if (started && a) {
      a.attempt = started.attempt!;
      if (started.lastFailure)
        a.retriedAfter = started.lastFailure.timeoutFailureInfo ? 'timeout' : started.lastFailure.message!;
    }
    const completed = e.activityTaskCompletedEventAttributes;
    const c = completed && byScheduledEvent.get(String(completed.scheduledEventId));
    if (completed && c) {
      c.completedBy = completed.identity!;
      c.completedAtMs = tsToMs(e.eventTime);
    }
  }
  return new Map([...byScheduledEvent.values()].map((a) => [a.activityId, a]));
}

/** temporal.api.enums.v1.PendingActivityState: handed to a worker, not finished. */
const PENDING_ACTIVITY_STATE_STARTED = 2;

/**
 * The activities the server has handed to a worker and not yet seen finish: activity id -> that worker's identity
 * and the attempt it runs.
 */
export async function startedActivities(
  handle: WorkflowHandle,
): Promise<Map<string, { worker: string; attempt: number }>> {
  const { raw } = await handle.describe();
  const started = new Map<string, { worker: string; attempt: number }>();
  for (const a of raw.pendingActivities ?? []) {
    if (a.state === PENDING_ACTIVITY_STATE_STARTED)
      started.set(a.activityId!, { worker: a.lastWorkerIdentity ?? '', attempt: a.attempt ?? 0 });
  }
  return started;
}

/** Runs `fn` on a fresh connection to the item store's database (one per call: it survives a restart between). */
async function withDatabase<T>(url: string, fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    return await fn(db);
  } finally {
    await db.end();
  }
}

/** The item store's rows of a batch's items: idx -> how many result rows, item event rows, and the results. */
export async function storedRows(
  url: string,
  batchId: string,
): Promise<{ results: Map<number, number>; events: Map<number, number> }> {
  return withDatabase(url, async (db) => {
    const perItem = async (table: string) =>
      new Map(
        (
          await db.query<{ idx: number; rows: number }>(
            `SELECT idx, count(*)::int AS rows FROM ${table} WHERE batch_id = $1 AND idx >= 0 GROUP BY idx`,
            [batchId],
          )
        ).rows.map((r) => [r.idx, r.rows]),
      );
    return { results: await perItem('results'), events: await perItem('events') };
  });
}

/** Statements the connections named `application_name` are running right now. */
export async function activeStatements(url: string, applicationName: string): Promise<number> {
  return withDatabase(url, async (db) => {
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
      [applicationName],
    );
    return rows[0]!.n;
  });
}

/**
 * The server processes (backends) of the connections named `application_name`, in any state. A backend ends once
 * its client is gone and it has finished the statement it was running: then nothing that client sent can commit.
 */
export async function backends(url: string, applicationName: string): Promise<number> {
  return withDatabase(url, async (db) => {
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    );
    return rows[0]!.n;
  });
}

/** `temporal workflow list --query <query>` on the cluster: the workflow ids it prints, sorted. */
export async function temporalWorkflowList(address: string, namespace: string, query: string): Promise<string[]> {
  const cli = await resolveTemporalCli();
  const { stdout } = await execFileAsync(
    cli,
    ['workflow', 'list', '--address', address, '--namespace', namespace, '--query', query, '--output', 'jsonl'],
    { timeout: 30_000, maxBuffer: 16 << 20 },
  );
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { execution: { workflowId: string } }).execution.workflowId)
    .sort();
}

/** One process in the table: its pid, its start time (so a reused pid is not taken for it), its command line. */
export interface ProcessEntry {
  pid: number;
  startTime: string;
  cmd: string;
}

function readProcess(pid: number): (ProcessEntry & { ppid: number; state: string; mentions: string }) | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // proc(5) fields 3 (state), 4 (ppid) ... 22 (start time), after the command name that may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    // Where it runs and what it was given: its working directory, its command line, its environment.
    let mentions = cmd;
    for (const read of [
      () => fs.readlinkSync(`/proc/${pid}/cwd`),
      () => fs.readFileSync(`/proc/${pid}/environ`, 'utf8'),
    ]) {
      try {
        mentions += `\0${read()}`;
      } catch {
        // a zombie, or not ours to read
      }
    }
    return { pid, state: fields[0]!, ppid: Number(fields[1]), startTime: fields[19]!, cmd, mentions };
  } catch {
    return undefined; // gone meanwhile
  }
}

/**
 * Every process descended from `root`, and every other process whose working directory, command line or
 * environment names `dir` (a server that chdirs into its data directory, a child given DATA_DIR, one whose parent
 * has gone), with its descendants. Reads /proc (Linux).
 */
export function processesOf(dir: string, root?: number): ProcessEntry[] {
  const all = fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => readProcess(Number(name)) ?? []);
  const found = new Map<number, ProcessEntry>();
  const children = new Map<number, number[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const byPid = new Map(all.map((p) => [p.pid, p]));
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      if (found.has(child)) continue;
      found.set(child, byPid.get(child)!);
      visit(child);
    }
  };
  if (root !== undefined) visit(root);
  for (const p of all) {
    if (p.pid !== process.pid && p.mentions.includes(dir)) {
      found.set(p.pid, p);
      visit(p.pid);
    }
  }
  return [...found.values()].map(({ pid, startTime, cmd }) => ({ pid, startTime, cmd }));
}

/** Whether `p` still runs (the same process: a pid reused since does not count). Zombies count as gone. */
export function stillRunning(p: ProcessEntry): boolean {
  const now = readProcess(p.pid);
  return now !== undefined && now.startTime === p.startTime && now.state !== 'Z';
}
