// bench/cluster: batchline on a cluster (the real Temporal server on PostgreSQL, workers and APIs as separate
// processes sharing only the database and Temporal: `batchline cluster`), with 1 and 2 worker hosts, against
// batchline on the dev server (`batchline dev`'s stack, one batch worker) and graphile-worker (one job per item,
// same model, same result writes) on the cluster's own PostgreSQL, in the same run, systems alternating.
// Writes bench/results/cluster-<date>.json and the "cluster" section of BENCHMARKS.md. `npm run bench` runs it
// after bench/compare.ts; alone:
//
//   npm run build && node --import tsx bench/cluster.ts [--quick]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { startCluster, type Cluster, type ClusterProcess } from '../src/cluster/cluster.js';
import { ITEM_STORE_DATABASE } from '../src/cluster/topology.js';
import { loadConfig } from '../src/config.js';
import type { BatchOptions } from '../src/contracts/batch.js';
import { freePort } from '../src/free-port.js';
import { resolveTemporalServer } from '../scripts/temporal-server.mjs';
import { parseBenchArgs } from './lib/args.js';
import { itemsOf, warmUpItems } from './lib/model-items.js';
import { fmt, machine, ratio, REPO_ROOT, stat, updateBenchmarksMd, writeResults, type Stat } from './lib/report.js';
import { percentile, treeCpuSeconds } from './lib/system-run.js';
import {
  CHUNKED_LOCAL_OPTIONS,
  CHUNKED_OPTIONS,
  runBatchline,
  startBatchlineStack,
  type BatchlineRun,
  type BatchlineStack,
} from './systems/batchline.js';
import { runGraphile } from './systems/graphile.js';
import type { SystemRun } from './lib/system-run.js';

/** compare.ts's settings: per item 64 in flight per shard; chunked, the best of bench/tune.ts. */
const PER_ITEM_OPTIONS: Partial<BatchOptions> = { concurrency: 64 };
/** graphile-worker's jobs in flight per worker process (as BullMQ's in compare.ts). */
const GRAPHILE_CONCURRENCY = 64;

/**
 * Chunked local: the same chunks as local activities (compare.ts's `batchline chunked local` row), on batchline's
 * stacks only: graphile-worker's jobs are the same as in the chunked table, whose graphile rows its ratios use.
 */
const MODES = ['per-item', 'chunked', 'chunked local'] as const;
type Mode = (typeof MODES)[number];
const OPTIONS: Record<Mode, Partial<BatchOptions>> = {
  'per-item': PER_ITEM_OPTIONS,
  chunked: CHUNKED_OPTIONS,
  'chunked local': CHUNKED_LOCAL_OPTIONS,
};
const SYSTEMS = ['dev', 'cluster 1 worker', 'cluster 2 workers', 'graphile 1 worker', 'graphile 2 workers'] as const;
type System = (typeof SYSTEMS)[number];
/** The systems a mode runs: graphile-worker has no local chunks. */
const systemsOf = (mode: Mode): readonly System[] =>
  mode === 'chunked local' ? SYSTEMS.filter((s) => !s.startsWith('graphile')) : SYSTEMS;
/** The mode whose graphile rows a mode's "× graphile" column divides by. */
const graphileModeOf = (mode: Mode): Mode => (mode === 'chunked local' ? 'chunked' : mode);

interface Row {
  system: System;
  itemsPerSecond: Stat;
  firstResultMs?: Stat;
  p50Ms: Stat;
  p99Ms: Stat;
  /** batchline only: CPU seconds per 1,000 items of the Temporal server, of one batch worker, of the API. */
  cpuPerThousandItems?: { temporal: number; worker: number; api: number };
  /**
   * On the cluster's PostgreSQL (cluster and graphile rows): CPU seconds per 1,000 items of its processes, from the
   * start of submission until the last outcome was stored (SystemRun.treeCpuSeconds).
   */
  postgresCpuPerThousandItems?: number;
  /** Cluster rows: committed transactions per item in Temporal's database and in the item store's (medians). */
  commitsPerItem?: { temporal: number; itemStore: number };
}

export interface ClusterBenchOptions {
  quick: boolean;
}

const apiConfig = (cluster: Cluster) =>
  loadConfig({
    TEMPORAL_ADDRESS: cluster.temporal.address,
    DATABASE_URL: cluster.databaseUrl,
    MODEL_REPOSITORY: path.join(REPO_ROOT, 'models'),
    LOG_LEVEL: 'warn',
  });

/** The cluster seen as the stack runBatchline drives: API 1, worker 1 (the CPU and memory it reports), its server. */
function asStack(cluster: Cluster): BatchlineStack {
  const proc = (name: string) => cluster.processes.find((p) => p.name === name)!.child;
  return {
    config: apiConfig(cluster),
    apiUrl: cluster.apiUrls[0]!,
    worker: proc('worker-1'),
    api: proc('api-1'),
    temporal: cluster.temporal,
    stop: () => cluster.stop(),
  };
}

async function stopProcess(p: ClusterProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await exited;
}

async function waitReady(cluster: Cluster): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (const url of cluster.apiUrls) {
    while (
      !(await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error(`${url} not ready within 120 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Waits (at most 60 s) until PostgreSQL and the Temporal server are quiet: under 5% of a core over a second. A run
 * must not pay for the one before it (autovacuum after graphile-worker's job churn, a dev stack still stopping).
 */
async function settle(pids: number[]): Promise<void> {
  const cpu = () => pids.reduce((sum, pid) => sum + (treeCpuSeconds(pid) ?? 0), 0);
  const deadline = Date.now() + 60_000;
  for (let before = cpu(); Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = cpu();
    if (now - before < 0.05) return;
    before = now;
  }
  console.error('cluster bench: the servers did not settle within 60 s; measuring anyway');
}

export async function measureCluster({ quick }: ClusterBenchOptions): Promise<string> {
  const rounds = quick ? 1 : 3;
  const chunkedItems = quick ? 20_000 : 50_000;
  const items: Record<Mode, number> = {
    'per-item': quick ? 2_000 : 5_000,
    chunked: chunkedItems,
    'chunked local': chunkedItems,
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-bench-cluster-'));
  fs.chmodSync(dir, 0o755); // PostgreSQL started by root runs as the postgres user, who must enter it
  const cluster = await startCluster({
    root: REPO_ROOT,
    dir,
    binaries: await resolveTemporalServer(),
    batchline: [process.execPath, path.join(REPO_ROOT, 'bin', 'batchline.mjs')],
    workers: 2,
    apis: 1,
    temporalPort: await freePort(),
    apiPort: await freePort(),
    workerMetricsPort: 0,
    namespace: 'default',
    modelRepository: path.join(REPO_ROOT, 'models'),
    env: {
      LOG_LEVEL: 'warn',
      MAX_BATCH_ITEMS: '1000000',
      MAX_BODY_BYTES: String(512 * 1024 * 1024),
      RATE_LIMIT_PER_MINUTE: '0',
    },
    onLine: (source, line) => /"level":(50|60)|ERROR|FATAL|panic/.test(line) && console.error(`[${source}] ${line}`),
  });
  const perMode = <T>(): Record<Mode, Partial<Record<System, T[]>>> => ({
    'per-item': {},
    chunked: {},
    'chunked local': {},
  });
  const runs = perMode<SystemRun | BatchlineRun>();
  const postgresCpu = perMode<number>();
  const commits = perMode<{ temporal: number; itemStore: number }>();
  const admin = new pg.Client({ connectionString: cluster.postgres!.url() });
  /** Committed transactions so far in Temporal's database and the item store's (pg_stat_database). */
  const committed = async () => {
    await new Promise((r) => setTimeout(r, 600)); // backends report their statistics at most every 500 ms
    const { rows } = await admin.query<{ datname: string; n: string }>(
      `SELECT datname, xact_commit AS n FROM pg_stat_database WHERE datname IN ('temporal', $1)`,
      [ITEM_STORE_DATABASE],
    );
    const of = (name: string) => Number(rows.find((r) => r.datname === name)?.n ?? NaN);
    return { temporal: of('temporal'), itemStore: of(ITEM_STORE_DATABASE) };
  };
  const postmaster = Number(
    fs.readFileSync(path.join(dir, 'postgres', 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
  );
  let databases = 0;
  try {
    await admin.connect();
    await waitReady(cluster);
    const worker2 = cluster.processes.find((p) => p.name === 'worker-2')!;
    /** Settles the servers, then runs the timed batch (on the cluster, counting its commits over it). */
    const timed = async (system: System, mode: Mode, batch: () => Promise<BatchlineRun>) => {
      await settle([postmaster, cluster.temporal.child.pid!]);
      if (!system.startsWith('cluster')) return batch();
      const before = await committed();
      const r = await batch();
      const after = await committed();
      const per = (k: 'temporal' | 'itemStore') => Math.round(((after[k] - before[k]) / r.items) * 100) / 100;
      (commits[mode][system] ??= []).push({ temporal: per('temporal'), itemStore: per('itemStore') });
      return r;
    };
    const run = async (system: System, mode: Mode): Promise<SystemRun | BatchlineRun> => {
      const work = itemsOf('digits', items[mode]);
      const warmUp = work.slice(0, warmUpItems(work.length));
      const options = OPTIONS[mode];
      if (system === 'dev') {
        const stack = await startBatchlineStack({});
        try {
          await runBatchline(stack, 'digits', warmUp, options, `dev ${mode} warm-up`);
          return await timed(system, mode, () => runBatchline(stack, 'digits', work, options, `dev ${mode}`));
        } finally {
          await stack.stop();
        }
      }
      if (system.startsWith('cluster')) {
        const two = system === 'cluster 2 workers';
        const running = worker2.child.exitCode === null && worker2.child.signalCode === null;
        if (two && !running) {
          worker2.restart();
          await new Promise((r) => setTimeout(r, 5000)); // its model load and first polls
        }
        if (!two && running) await stopProcess(worker2);
        const stack = asStack(cluster);
        await runBatchline(stack, 'digits', warmUp, options, `${system} ${mode} warm-up`);
        return timed(system, mode, () =>
          runBatchline(stack, 'digits', work, options, `${system} ${mode}`, { postgres: postmaster }),
        );
      }
      // graphile-worker: a fresh database per run (its jobs table slows as deleted jobs pile up).
      const database = `graphile_${++databases}`;
      await cluster.postgres!.ensureDatabase(database);
      await settle([postmaster, cluster.temporal.child.pid!]);
      return runGraphile({
        cpuTrees: { postgres: postmaster },
        model: 'digits',
        items: work,
        warmUp,
        workers: system === 'graphile 2 workers' ? 2 : 1,
        concurrency: GRAPHILE_CONCURRENCY,
        databaseUrl: cluster.postgres!.url(database),
        modelRepository: path.join(REPO_ROOT, 'models'),
      });
    };
    for (let round = 0; round < rounds; round++) {
      for (const mode of MODES) {
        const systems = systemsOf(mode);
        const order = systems.map((_, i) => systems[(i + round) % systems.length]!);
        for (const system of order) {
          const r = await run(system, mode);
          if (system !== 'dev') {
            const perThousand = ((r.treeCpuSeconds?.postgres ?? NaN) / r.items) * 1000;
            (postgresCpu[mode][system] ??= []).push(Math.round(perThousand * 1000) / 1000);
          }
          if (r.failed > 0) throw new Error(`${system} ${mode}: ${r.failed} items failed`);
          (runs[mode][system] ??= []).push(r);
          console.error(
            `cluster bench round ${round + 1} ${mode} ${system}: ${Math.round(r.items / (r.wallMs / 1000))} items/s`,
          );
        }
      }
    }
  } finally {
    await admin.end();
    await cluster.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const rows: Record<Mode, Row[]> = { 'per-item': [], chunked: [], 'chunked local': [] };
  for (const mode of MODES) {
    for (const system of systemsOf(mode)) {
      const r = runs[mode][system]!;
      const row: Row = {
        system,
        itemsPerSecond: stat(r.map((x) => x.items / (x.wallMs / 1000))),
        firstResultMs: stat(r.map((x) => x.firstResultMs)),
        p50Ms: stat(r.map((x) => percentile(x.latencyMs, 50))),
        p99Ms: stat(r.map((x) => percentile(x.latencyMs, 99))),
      };
      const b = r.filter((x): x is BatchlineRun => 'cpuPerThousandItems' in x);
      if (b.length > 0) {
        const median = (k: 'temporal' | 'worker' | 'api') => stat(b.map((x) => x.cpuPerThousandItems[k])).median;
        row.cpuPerThousandItems = { temporal: median('temporal'), worker: median('worker'), api: median('api') };
      }
      const c = commits[mode][system];
      if (c) {
        row.commitsPerItem = {
          temporal: stat(c.map((x) => x.temporal)).median,
          itemStore: stat(c.map((x) => x.itemStore)).median,
        };
      }
      const pg = postgresCpu[mode][system];
      if (pg) row.postgresCpuPerThousandItems = stat(pg).median;
      rows[mode].push(row);
    }
  }
  const file = writeResults('cluster', {
    quick,
    rounds,
    items,
    machine: machine(),
    rows,
  });
  return report(rows, items, rounds, quick, file);
}

function report(rows: Record<Mode, Row[]>, items: Record<Mode, number>, rounds: number, quick: boolean, file: string) {
  const n = (v: number, d = 0) => v.toLocaleString('en-US', { maximumFractionDigits: d });
  const lines = [
    `Command: \`npm run bench${quick ? ' -- --quick' : ''}\` (after compare), or \`node --import tsx bench/cluster.ts${quick ? ' --quick' : ''}\`.`,
    `${rounds} round(s), systems alternating; median (min–max). Digits. *dev*: \`batchline dev\`'s stack (dev server on SQLite, one`,
    'batch worker at its dev priority). *cluster*: `batchline cluster` (Temporal server 1.29.1 on PostgreSQL, 4 history',
    'shards, CLUSTER_DYNAMIC_CONFIG; workers and API as separate processes on the PostgreSQL item store), one API,',
    '1 or 2 batch worker processes. *graphile*: graphile-worker 0.17 on the same PostgreSQL (fresh database per run),',
    `one job per item, ${GRAPHILE_CONCURRENCY} jobs in flight per worker process, its local queue and batched completion on.`,
    `Per item: ${JSON.stringify(PER_ITEM_OPTIONS)}; chunked: ${JSON.stringify(CHUNKED_OPTIONS)}; chunked local: the same`,
    'chunks as local activities (batchline only: its "× graphile" divides by the chunked table\'s graphile row). graphile',
    `runs the same items in both its tables. Warm: before each timed batch, every system runs an untimed batch of the same`,
    `items (warmUpItems) on the same processes, in the same mode (the dev stack is fresh per run, graphile's`,
    `workers too). All on one 2-core machine: the cluster's processes share it. PostgreSQL CPU: its processes' CPU`,
    "from the start of submission until the last outcome was stored (not the bench's reading of the results after).",
    `Raw figures: [${file}](${file}).`,
    '',
  ];
  for (const mode of MODES) {
    const r = rows[mode];
    const of = (s: System, m: Mode = mode) => rows[m].find((x) => x.system === s)!.itemsPerSecond.median;
    const title = { 'per-item': 'Per item', chunked: 'Chunked', 'chunked local': 'Chunked, local activities' }[mode];
    lines.push(`### ${title}, ${n(items[mode])} items`, '');
    lines.push(
      '| system | items/s | × dev | × graphile 1 worker | first result ms | p50 / p99 ms per item | CPU s per 1k items: Temporal / worker 1 / API | PostgreSQL CPU s per 1k items | PostgreSQL commits per item: Temporal / item store |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const row of r) {
      const m = row.itemsPerSecond.median;
      const cpu = row.cpuPerThousandItems;
      lines.push(
        `| ${row.system} | ${fmt(row.itemsPerSecond)} | ${ratio(m / of('dev'))} | ${ratio(m / of('graphile 1 worker', graphileModeOf(mode)))} | ${row.firstResultMs ? fmt(row.firstResultMs) : '–'} | ${n(row.p50Ms.median, 1)} / ${n(row.p99Ms.median, 1)} | ${cpu ? `${cpu.temporal} / ${cpu.worker} / ${cpu.api}` : '–'} | ${row.postgresCpuPerThousandItems ?? '–'} | ${row.commitsPerItem ? `${row.commitsPerItem.temporal} / ${row.commitsPerItem.itemStore}` : '–'} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseBenchArgs('usage: node --import tsx bench/cluster.ts [--quick]', {
    options: { quick: { type: 'boolean', default: false } },
  });
  const body = await measureCluster({ quick: values.quick });
  updateBenchmarksMd('cluster', body);
  console.error('wrote the cluster section of BENCHMARKS.md');
}
