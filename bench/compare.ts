// bench/compare: the same items through raw onnxruntime, BullMQ on a local Redis, and batchline (per item and
// chunked, through its public API), on one machine with one worker process each, systems alternating in each
// round. Every figure is a median over the rounds with its min and max; ratios are taken within this run.
// Writes bench/results/compare-<date>.json and the "compare" section of BENCHMARKS.md, then runs bench/cluster.ts
// (batchline on a cluster, and graphile-worker on its PostgreSQL) for the "cluster" section and bench/overload.ts
// (sync predictions while 20 clients flood the API with batches) for the "overload" section.
//
//   npm run bench [-- --quick]       (npm run bench builds first; this file runs under tsx)
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import type { BatchOptions } from '../src/contracts/batch.js';
import { ModelRepository } from '../src/runtime/model-repository.js';
import { parseBenchArgs } from './lib/args.js';
import { itemsOf, warmUpItems } from './lib/model-items.js';
import { percentile, rssMb } from './lib/system-run.js';
import { startRedis } from './lib/redis.js';
import { fmt, machine, ratio, REPO_ROOT, stat, updateBenchmarksMd, writeResults, type Stat } from './lib/report.js';
import type { SystemRun } from './lib/system-run.js';
import {
  BATCH_WORKER_PRIORITY,
  CHUNKED_LOCAL_OPTIONS,
  CHUNKED_OPTIONS,
  measurePredict,
  runBatchline,
  startBatchlineStack,
  type BatchlineRun,
} from './systems/batchline.js';
import { measureCluster } from './cluster.js';
import { measureOverload } from './overload.js';
import { runBullmq } from './systems/bullmq.js';
import { runRaw, runRawThreads, type RawRun, type RawThreadsRun } from './systems/raw.js';
import { runStoreCeiling, type StoreCeilingRun } from './systems/store-ceiling.js';

const { values: args } = parseBenchArgs(
  'usage: npm run bench [-- --quick] [-- --workload NAME | --memory]   (--quick: fewer rounds, smaller workloads;\n' +
    '--workload: that workload alone, e.g. "digits 100k", into a section of its own, without the online, memory, cluster\n' +
    'and overload parts; --memory: the memory part alone, into a section of its own)',
  {
    options: {
      quick: { type: 'boolean', default: false },
      workload: { type: 'string' },
      memory: { type: 'boolean', default: false },
    },
  },
);
const quick = args.quick;
/** One workload alone (--workload), or undefined for the whole comparison. */
const only = args.workload;
/** The memory part alone (--memory). */
const memoryOnly = args.memory;
if (memoryOnly && (only || quick)) {
  console.error('--memory runs the memory part alone: without --workload or --quick');
  process.exit(2);
}
const COMMAND = only
  ? `node --import tsx bench/compare.ts${quick ? ' --quick' : ''} --workload "${only}"`
  : memoryOnly
    ? 'node --import tsx bench/compare.ts --memory'
    : `npm run bench${quick ? ' -- --quick' : ''}`;
/** The BENCHMARKS.md section (and results file) this run writes. */
const SECTION = only
  ? `compare-${only.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`
  : memoryOnly
    ? 'compare-memory'
    : 'compare';
const ROUNDS = quick ? 2 : 3;
/**
 * Items in flight per system: BullMQ's worker concurrency, and batchline's per-item setting, 64 per shard (the best
 * measured by bench/tune.ts; the worker executes at most 64 activities at once). Chunked: the best chunk setting
 * measured by bench/tune.ts.
 */
const IN_FLIGHT = 64;
/** The inference threads of batchline's worker (INFERENCE_THREADS, as the benches' stacks run it): raw threads runs as many. */
const INFERENCE_THREADS = loadConfig().INFERENCE_THREADS;
const PER_ITEM_OPTIONS: Partial<BatchOptions> = { concurrency: 64 };
const PER_ITEM_LOCAL_OPTIONS: Partial<BatchOptions> = { concurrency: 64, itemActivities: 'local' };

interface Workload {
  name: string;
  model: string;
  items: number;
  /** Systems left out of this workload (per item with remote activities at 100k is too slow to repeat every round; bench/tune.ts measures it). */
  skip?: SystemName[];
}

const WORKLOADS: Workload[] = quick
  ? [
      { name: 'digits 10k', model: 'digits', items: 10_000 },
      { name: 'embeddings 500', model: 'all-minilm-l6-v2', items: 500 },
    ]
  : [
      { name: 'digits 10k', model: 'digits', items: 10_000 },
      { name: 'digits 100k', model: 'digits', items: 100_000, skip: ['batchline per-item'] },
      { name: 'embeddings 5k', model: 'all-minilm-l6-v2', items: 5_000 },
    ];

if (only && !WORKLOADS.some((w) => w.name === only)) {
  console.error(`no workload '${only}' (workloads: ${WORKLOADS.map((w) => w.name).join(', ')})`);
  process.exit(2);
}

type Run = RawRun | RawThreadsRun | StoreCeilingRun | SystemRun | BatchlineRun;
const SYSTEMS = [
  'raw',
  'raw threads',
  'store ceiling',
  'bullmq',
  'batchline per-item',
  'batchline per-item local',
  'batchline chunked',
  'batchline chunked local',
] as const;
type SystemName = (typeof SYSTEMS)[number];

// Each queue system (and the store ceiling) runs an untimed batch first (warmUpItems); the raw loops warm up with one
// run of their own.

async function runSystem(system: SystemName, w: Workload, redisUrl: string): Promise<Run> {
  const items = itemsOf(w.model, w.items);
  const warmUp = items.slice(0, warmUpItems(w.items));
  const repository = new ModelRepository(path.join(REPO_ROOT, 'models'));
  if (system === 'raw') return runRaw(await repository.resolve(w.model), items);
  if (system === 'raw threads') return runRawThreads(await repository.resolve(w.model), items, INFERENCE_THREADS);
  if (system === 'store ceiling') return runStoreCeiling(w.model, items, CHUNKED_OPTIONS.itemsPerActivity!, warmUp);
  if (system === 'bullmq') {
    return runBullmq({
      model: w.model,
      items,
      workers: 1,
      concurrency: IN_FLIGHT,
      redisUrl,
      dataDir: path.join(REPO_ROOT, 'data', 'bench-bullmq'),
      modelRepository: path.join(REPO_ROOT, 'models'),
      warmUp,
    });
  }
  const options =
    {
      'batchline chunked': CHUNKED_OPTIONS,
      'batchline chunked local': CHUNKED_LOCAL_OPTIONS,
      'batchline per-item local': PER_ITEM_LOCAL_OPTIONS,
    }[system as string] ?? PER_ITEM_OPTIONS;
  const stack = await startBatchlineStack();
  try {
    await runBatchline(stack, w.model, warmUp, options, `${system} warm-up`);
    return await runBatchline(stack, w.model, items, options, system);
  } finally {
    await stack.stop();
  }
}

const itemsPerSecond = (r: Run) => ('itemsPerSecond' in r ? r.itemsPerSecond : r.items / (r.wallMs / 1000));

interface Row {
  system: SystemName;
  itemsPerSecond: Stat;
  firstResultMs?: Stat;
  /** Medians of the first result's split: to its attempt's start, the attempt, to the client. */
  firstResultSplitMs?: { toStart: number; attempt: number; toClient: number };
  p50Ms?: Stat;
  p99Ms?: Stat;
  submitMs?: Stat;
  workerRssMb?: Stat;
  apiRssMb?: Stat;
  eventsPerItem?: number;
  maxEventsPerExecution?: number;
}

function summarize(system: SystemName, runs: Run[]): Row {
  const s = (f: (r: any) => number) => stat(runs.map(f));
  const row: Row = { system, itemsPerSecond: s(itemsPerSecond) };
  if (system === 'raw' || system === 'raw threads' || system === 'store ceiling') return row;
  Object.assign(row, {
    firstResultMs: s((r) => r.firstResultMs),
    p50Ms: s((r) => percentile(r.latencyMs, 50)),
    p99Ms: s((r) => percentile(r.latencyMs, 99)),
    submitMs: s((r) => r.submitMs),
    workerRssMb: s((r) => r.workerPeakRssMb),
  });
  if (system.startsWith('batchline')) {
    const b = runs as BatchlineRun[];
    row.apiRssMb = stat(b.map((r) => r.apiPeakRssMb));
    const median = (f: (r: BatchlineRun) => number) => stat(b.map(f)).median;
    row.firstResultSplitMs = {
      toStart: median((r) => r.firstResultSplitMs.toStart),
      attempt: median((r) => r.firstResultSplitMs.attempt),
      toClient: median((r) => r.firstResultSplitMs.toClient),
    };
    row.eventsPerItem = Math.max(...b.map((r) => r.historyEvents.perItem));
    row.maxEventsPerExecution = Math.max(...b.map((r) => r.historyEvents.maxPerExecution));
  }
  return row;
}

async function main(): Promise<void> {
  if (memoryOnly) return finish([], undefined, await measureScale());
  const redis = await startRedis();
  const results: { workload: Workload; rows: Row[]; runs: Record<string, unknown[]> }[] = [];
  let online: Online | undefined;
  let scale: ScaleRow[] | undefined;
  let clusterSection: string | undefined;
  let overloadSection: string | undefined;
  try {
    for (const w of WORKLOADS.filter((w) => !only || w.name === only)) {
      const runs: Record<string, Run[]> = {};
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate: each round starts with a different system, so drift in the machine hits all of them.
        const systems = SYSTEMS.filter((sys) => !w.skip?.includes(sys));
        const order = systems.map((_, i) => systems[(i + round) % systems.length]!);
        for (const system of order) {
          const run = await runSystem(system, w, redis.url);
          (runs[system] ??= []).push(run);
          console.error(`${w.name} round ${round + 1} ${system}: ${Math.round(itemsPerSecond(run))} items/s`);
        }
      }
      const rows = SYSTEMS.filter((sys) => runs[sys]).map((sys) => summarize(sys, runs[sys]!));
      results.push({
        workload: w,
        rows,
        runs: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map(stripLatencies)])),
      });
    }
    if (only) return finish(results, undefined, undefined);
    // A failure here must not lose the workloads' figures, the longest part of the run.
    online = await measureOnline().catch((err: unknown) => {
      console.error('the sync predict measurement failed:', err);
      return undefined;
    });
    if (!quick) {
      scale = await measureScale().catch((err: unknown) => {
        console.error('the memory measurement failed:', err);
        return undefined;
      });
    }
    // The cluster rows: batchline on the real Temporal server on PostgreSQL, and graphile-worker (bench/cluster.ts).
    clusterSection = await measureCluster({ quick }).catch((err: unknown) => {
      console.error('the cluster measurement failed:', err);
      return undefined;
    });
    // Online predictions under overload, per worker layout (bench/overload.ts).
    overloadSection = await measureOverload({ quick, command: COMMAND }).catch((err: unknown) => {
      console.error('the overload measurement failed:', err);
      return undefined;
    });
  } finally {
    await redis.stop();
  }
  finish(results, online, scale);
  if (clusterSection) updateBenchmarksMd('cluster', clusterSection);
  if (overloadSection) updateBenchmarksMd('overload', overloadSection);
}

/** Writes the raw figures and this run's section of BENCHMARKS.md. */
function finish(
  results: { workload: Workload; rows: Row[]; runs: Record<string, unknown[]> }[],
  online: Online | undefined,
  scale: ScaleRow[] | undefined,
): void {
  const file = writeResults(SECTION, {
    quick,
    rounds: ROUNDS,
    machine: machine(),
    results,
    online: online && summarizeOnline(online),
    scale,
  });
  updateBenchmarksMd(SECTION, report(results, online, scale, file));
  console.error(`wrote ${file} and BENCHMARKS.md`);
}

/** Runs keep their latency percentiles, not every latency (100k numbers per run). */
function stripLatencies(r: Run): unknown {
  if (!('latencyMs' in r)) return r;
  const { latencyMs, ...rest } = r;
  return { ...rest, latencyP50Ms: percentile(latencyMs, 50), latencyP99Ms: percentile(latencyMs, 99) };
}

/** Worker layouts the online figures compare: `batchline dev`'s (niced batch worker + interactive worker), one worker. */
const LAYOUTS = ['split', 'one'] as const;
type Layout = (typeof LAYOUTS)[number];

interface OnlineRun {
  aloneMs: number[];
  /** During a per-item batch with the default (remote) item activities, and during one with local ones. */
  duringMs: Record<'remote' | 'local', number[]>;
}
/** Each layout's runs, a fresh stack each: one run's p99 rests on its few slowest requests, so it is repeated. */
type Online = Record<Layout, OnlineRun[]>;

const ONLINE_ROUNDS = quick ? 1 : 3;

/** Sync predict at 20 requests/s, for each worker layout, ONLINE_ROUNDS times with layouts alternating. */
async function measureOnline(): Promise<Online> {
  const online = Object.fromEntries(LAYOUTS.map((l) => [l, []])) as unknown as Online;
  for (let round = 0; round < ONLINE_ROUNDS; round++) {
    for (const layout of LAYOUTS.map((_, i) => LAYOUTS[(i + round) % LAYOUTS.length]!)) {
      online[layout].push(await measureOnlineLayout(layout));
      console.error(`sync predict round ${round + 1} ${layout}: done`);
    }
  }
  return online;
}

/** Items of the batch that runs while sync predict is measured: enough to outlast the measurement in local mode. */
const ONLINE_BATCH_ITEMS = quick ? 30_000 : 100_000;

/** Sync predict at a steady 20 requests/s: alone, then while a per-item batch of digits runs (ONLINE_BATCH_ITEMS). */
async function measureOnlineLayout(layout: Layout): Promise<OnlineRun> {
  const inputs = itemsOf('digits', 100);
  const stack = await startBatchlineStack({}, { workers: layout });
  try {
    const seconds = quick ? 10_000 : 30_000;
    await measurePredict(stack.apiUrl, 'digits', inputs, 20, 2000); // warm-up
    const aloneMs = await measurePredict(stack.apiUrl, 'digits', inputs, 20, seconds);
    const body = itemsOf('digits', ONLINE_BATCH_ITEMS)
      .map((i) => JSON.stringify({ inputs: i }))
      .join('\n');
    const duringMs = {} as OnlineRun['duringMs'];
    for (const kind of ['remote', 'local'] as const) {
      const res = await fetch(`${stack.apiUrl}/v1/batches?model=digits&itemActivities=${kind}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body,
      });
      const { id } = (await res.json()) as { id: string };
      duringMs[kind] = await measurePredict(stack.apiUrl, 'digits', inputs, 20, seconds);
      const state = (await (await fetch(`${stack.apiUrl}/v1/batches/${id}`)).json()) as { status: string };
      if (state.status !== 'running') console.error(`warning: the ${kind} batch ended before the measurement did`);
      await fetch(`${stack.apiUrl}/v1/batches/${id}/cancel`, { method: 'POST' });
      for (let t = Date.now(); Date.now() - t < 60_000;) {
        const s = (await (await fetch(`${stack.apiUrl}/v1/batches/${id}`)).json()) as { status: string };
        if (s.status !== 'running') break;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    return { aloneMs, duringMs };
  } finally {
    await stack.stop();
  }
}

interface ScaleRow {
  items: number;
  runs: number;
  itemsPerSecond: Stat;
  submitMs: Stat;
  /** The worker's peak RSS (VmHWM) of each run. */
  workerPeakRssMb: Stat;
  /** The worker's RSS sampled every second over the second half of each run, the median of each run. */
  workerSteadyRssMb: Stat;
  apiPeakRssMb: Stat;
  maxEventsPerExecution: number;
}

/** The memory measurement's runs, sizes alternating: several per size, as one run samples one GC schedule. */
const SCALE_ORDER = [100_000, 1_000_000, 100_000, 1_000_000, 100_000];

/** Worker and API memory as a chunked batch grows from 100k to 1M items (fresh stack per run, sizes alternating). */
async function measureScale(): Promise<ScaleRow[]> {
  const runs = new Map<number, { run: BatchlineRun; steadyMb: number }[]>();
  for (const n of SCALE_ORDER) {
    const stack = await startBatchlineStack();
    const samples: { at: number; mb: number }[] = [];
    const sampler = setInterval(
      () => samples.push({ at: performance.now(), mb: rssMb(stack.worker.pid!) ?? NaN }),
      1000,
    );
    try {
      const started = performance.now();
      const run = await runBatchline(stack, 'digits', itemsOf('digits', n), CHUNKED_OPTIONS, 'batchline chunked');
      const half = started + (performance.now() - started) / 2;
      const steadyMb = percentile(
        samples.filter((s) => s.at >= half).map((s) => s.mb),
        50,
      );
      (runs.get(n) ?? runs.set(n, []).get(n)!).push({ run, steadyMb });
      console.error(
        `scale ${n}: worker RSS peak ${Math.round(run.workerPeakRssMb)} MiB, steady ${Math.round(steadyMb)} MiB, ${Math.round(n / (run.wallMs / 1000))} items/s`,
      );
    } finally {
      clearInterval(sampler);
      await stack.stop();
    }
  }
  return [...runs].map(([n, r]) => {
    return {
      items: n,
      runs: r.length,
      itemsPerSecond: stat(r.map(({ run }) => n / (run.wallMs / 1000))),
      submitMs: stat(r.map(({ run }) => run.submitMs)),
      workerPeakRssMb: stat(r.map(({ run }) => run.workerPeakRssMb)),
      workerSteadyRssMb: stat(r.map(({ steadyMb }) => steadyMb)),
      apiPeakRssMb: stat(r.map(({ run }) => run.apiPeakRssMb)),
      maxEventsPerExecution: Math.max(...r.map(({ run }) => run.historyEvents.maxPerExecution)),
    };
  });
}

function summarizeOnline(online: Online) {
  const scenario = (runs: number[][]) => ({
    requests: runs.map((v) => v.length),
    p50Ms: stat(runs.map((v) => percentile(v, 50))),
    p99Ms: stat(runs.map((v) => percentile(v, 99))),
  });
  const one = (runs: OnlineRun[]) => ({
    runs: runs.length,
    alone: scenario(runs.map((r) => r.aloneMs)),
    during: {
      remote: scenario(runs.map((r) => r.duringMs.remote)),
      local: scenario(runs.map((r) => r.duringMs.local)),
    },
    /** Per run, p99 during / p99 alone on the same stack. */
    p99Ratio: {
      remote: stat(runs.map((r) => percentile(r.duringMs.remote, 99) / percentile(r.aloneMs, 99))),
      local: stat(runs.map((r) => percentile(r.duringMs.local, 99) / percentile(r.aloneMs, 99))),
    },
  });
  return Object.fromEntries(LAYOUTS.map((l) => [l, one(online[l])])) as Record<Layout, ReturnType<typeof one>>;
}

/** A figure for a table: grouped digits, `d` decimals at most; – when there is none. */
const n = (v: number | undefined, d = 0) =>
  v === undefined || Number.isNaN(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: d });

function report(
  results: { workload: Workload; rows: Row[] }[],
  online: Online | undefined,
  scale: ScaleRow[] | undefined,
  file: string,
): string {
  const f = (s: Stat | undefined, d = 0) => (s ? fmt(s, d) : '–');
  if (memoryOnly) {
    return [
      `## Memory as a chunked batch grows, alone (\`${COMMAND}\`)`,
      '',
      `batchline chunked: ${JSON.stringify(CHUNKED_OPTIONS)}. Raw figures: [${file}](${file}).`,
      '',
      ...scaleLines(scale!),
    ].join('\n');
  }
  const lines = [
    `## Side by side: raw onnxruntime, BullMQ and batchline${only ? `, ${only} alone` : ''} (\`${COMMAND}\`)`,
    '',
    `${ROUNDS} rounds, systems alternating; median (min–max). One worker process per system does the batch work (batchline's`,
    `stack is \`batchline dev\`'s: its batch worker at ${BATCH_WORKER_PRIORITY}, plus an interactive worker, idle here, for online predictions).`,
    `BullMQ: worker concurrency ${IN_FLIGHT};`,
    `batchline per item: ${JSON.stringify(PER_ITEM_OPTIONS)}; per item local: ${JSON.stringify(PER_ITEM_LOCAL_OPTIONS)}; chunked: ${JSON.stringify(CHUNKED_OPTIONS)}; chunked local: ${JSON.stringify(CHUNKED_LOCAL_OPTIONS)}`,
    '(the best of bench/tune.ts). Warm stacks: before its timed batch, each system but the raw loops runs an untimed batch',
    'of the same items (warmUpItems) on the same processes, in the same mode; the raw loops warm up with one run.',
    'First result: from the start of submission (BullMQ enqueues in chunks and its workers',
    "start before the last chunk is in) to the first result a client can read: batchline's SSE event, BullMQ's stored",
    "result. First result split: submission returned -> the first finished item's attempt started / that attempt / its",
    "store write -> the client's SSE event. Store ceiling (bench/systems/store-ceiling.ts): the chunked work with no",
    'Temporal and no HTTP: chunks of the same size read, inferred by the same runtime and written run by run through the',
    'same item store API (SQLite), timed from the first read. Raw: one session on the calling thread, the best of intra-op',
    `threads 1 and 2; raw threads: ${INFERENCE_THREADS} sessions on ${INFERENCE_THREADS} threads (intra-op 1 each), as many as batchline's inference pool has`,
    '(bench/systems/raw.ts). × raw: items/s over the faster raw row; × ceiling and × BullMQ: over theirs; three',
    'significant digits.',
    `Raw figures: [${file}](${file}).`,
    '',
  ];
  for (const { workload, rows } of results) {
    const raw = Math.max(...rows.filter((r) => r.system.startsWith('raw')).map((r) => r.itemsPerSecond.median));
    const bull = rows.find((r) => r.system === 'bullmq')!.itemsPerSecond.median;
    const ceiling = rows.find((r) => r.system === 'store ceiling')!.itemsPerSecond.median;
    lines.push(`### ${workload.name} (${workload.model})`, '');
    lines.push(
      '| system | items/s | × raw | × ceiling | × BullMQ | first result ms from submit start | first result split ms | p50 / p99 ms per item | submit ms | worker RSS MiB | API RSS MiB | events/item | max events/execution |',
    );
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const m = r.itemsPerSecond.median;
      lines.push(
        `| ${r.system} | ${f(r.itemsPerSecond)} | ${ratio(m / raw)} | ${ratio(m / ceiling)} | ${ratio(m / bull)} | ${f(r.firstResultMs)} | ${r.firstResultSplitMs ? `${n(r.firstResultSplitMs.toStart)} / ${n(r.firstResultSplitMs.attempt)} / ${n(r.firstResultSplitMs.toClient)}` : '–'} | ${r.p50Ms ? `${n(r.p50Ms.median, 1)} / ${n(r.p99Ms!.median, 1)}` : '–'} | ${f(r.submitMs)} | ${f(r.workerRssMb)} | ${f(r.apiRssMb)} | ${n(r.eventsPerItem, 2)} | ${n(r.maxEventsPerExecution)} |`,
      );
    }
    lines.push('');
  }
  if (online) {
    const summary = summarizeOnline(online);
    lines.push('### Sync predict at 20 requests/s, alone and while a batch runs', '');
    lines.push(
      `Worker layouts: *split* is \`batchline dev\`'s (a batch worker at ${BATCH_WORKER_PRIORITY} and an interactive worker); *one* is one`,
      'worker process polling both queues at normal priority.',
      '',
    );
    lines.push(
      `${ONLINE_ROUNDS} run(s) per layout, a fresh stack each, layouts alternating; median (min–max) over the runs.`,
      '',
    );
    lines.push('| workers | | requests per run | p50 ms | p99 ms |', '|---|---|---|---|---|');
    for (const layout of LAYOUTS) {
      const o = summary[layout];
      lines.push(
        `| ${layout} | alone | ${o.alone.requests.map((x) => n(x)).join(', ')} | ${f(o.alone.p50Ms, 1)} | ${f(o.alone.p99Ms, 1)} |`,
      );
      for (const kind of ['remote', 'local'] as const) {
        const d = o.during[kind];
        lines.push(
          `| ${layout} | during a ${n(ONLINE_BATCH_ITEMS / 1000)}k-item per-item batch (${kind} item activities) | ${d.requests.map((x) => n(x)).join(', ')} | ${f(d.p50Ms, 1)} | ${f(d.p99Ms, 1)} |`,
        );
      }
    }
    lines.push('');
    lines.push("p99 during / p99 alone (×), each run against its own stack's alone figure, median (min–max):", '');
    for (const layout of LAYOUTS) {
      const o = summary[layout];
      lines.push(`- ${layout}: remote item activities ${f(o.p99Ratio.remote, 2)}; local ${f(o.p99Ratio.local, 2)}.`);
    }
    lines.push('');
  }
  if (scale) lines.push(...scaleLines(scale));
  return lines.join('\n');
}

/** The memory part's table and the 1M / 100k ratios. */
function scaleLines(scale: ScaleRow[]): string[] {
  const ratio = (k: 'workerPeakRssMb' | 'workerSteadyRssMb') => n(scale[1]![k].median / scale[0]![k].median, 2);
  return [
    `### Memory as a chunked batch grows (${scale.map((r) => `${n(r.items)}: ${r.runs} runs`).join(', ')}; fresh stack per run, sizes alternating)`,
    '',
    "Steady RSS: the worker's RSS sampled every second over the second half of a run, the median of each run.",
    '',
    '| items | items/s | submit ms | worker peak RSS MiB | worker steady RSS MiB | API peak RSS MiB | max events/execution |',
    '|---|---|---|---|---|---|---|',
    ...scale.map(
      (r) =>
        `| ${n(r.items)} | ${fmt(r.itemsPerSecond)} | ${fmt(r.submitMs)} | ${fmt(r.workerPeakRssMb)} | ${fmt(r.workerSteadyRssMb)} | ${fmt(r.apiPeakRssMb)} | ${n(r.maxEventsPerExecution)} |`,
    ),
    '',
    `Worker RSS 1M / 100k (medians): peak ${ratio('workerPeakRssMb')}x, steady ${ratio('workerSteadyRssMb')}x.`,
    '',
  ];
}

await main();
