// bench/overload: online predictions under overload (issue 24). Sync predictions at 10/s while 20 clients submit
// 1,000 batches of 100 digits items, for each worker layout: `normal` (a batch worker and an interactive worker,
// both at normal CPU priority: no nice, no SCHED_IDLE, as hosts or containers run them when nothing lowers the batch
// worker) and `dev` (`batchline dev`'s, the batch worker at nice 19 under SCHED_IDLE). Per layout, on one stack: predictions alone, then during
// the load, every answer classified by status; the interactive task queue's backlog sampled every second, and how
// long it takes to empty once the load stops; then, on a fresh stack, the same load without predictions, for the
// batch throughput's ratio. Writes bench/results/overload-<date>.json and the "overload" section of BENCHMARKS.md.
// `npm run bench` runs it after compare and cluster; alone:
//
//   npm run build && node --import tsx bench/overload.ts [--quick] [--layouts normal,dev]
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Client } from '@temporalio/client';
import { commandLine, parseBenchArgs } from './lib/args.js';
import { runBatchLoad, type BatchLoad } from './lib/batch-load.js';
import { itemsOf } from './lib/model-items.js';
import { predictHops, type Hop, type PredictHops } from './lib/predict-hops.js';
import { predictFor, startPredictStream, summarizePredicts, type PredictSummary } from './lib/predict-stream.js';
import { machine, ratio, updateBenchmarksMd, writeResults } from './lib/report.js';
import { cpuSeconds } from './lib/system-run.js';
import { maxBacklog, sampleBacklog, type Backlog, type BacklogSample } from './lib/task-queue-backlog.js';
import {
  BATCH_WORKER_PRIORITY,
  startBatchlineStack,
  type BatchlineStack,
  type WorkerLayout,
} from './systems/batchline.js';
import { connectTemporal } from '../src/client/connection.js';

/** The layouts compared, by the name the report gives them, and the stack's worker layout behind each. */
const LAYOUTS = { normal: 'split-normal-priority', dev: 'split' } as const satisfies Record<string, WorkerLayout>;
export type OverloadLayout = keyof typeof LAYOUTS;
const isLayout = (s: string): s is OverloadLayout => Object.hasOwn(LAYOUTS, s);

export interface OverloadBenchOptions {
  /** 200 batches and 10 s of predictions alone instead of 1,000 and 30 s. */
  quick: boolean;
  /** Default both, in this order. */
  layouts?: OverloadLayout[];
  /** The command the report names (default: this script's command line). */
  command?: string;
}

const MODEL = 'digits';
const CLIENTS = 20;
const ITEMS_PER_BATCH = 100;
const PREDICT_RATE = 10;
const PREDICT_TIMEOUT_MS = 30_000;
/** A request with no answer this long after its own timeout counts as unanswered. */
const ANSWER_GRACE_MS = 10_000;
const WARM_UP_MS = 2_000;
/** The longest wait for the interactive backlog to empty once the load stopped. */
const DRAIN_CAP_MS = 120_000;
/** Predictions per phase whose task history is read for the hop-by-hop split. */
const HOP_SAMPLE = 100;

interface Sizes {
  batches: number;
  aloneMs: number;
}

/** One load of batches, as measured: its items/s from the first submission to the last batch's end. */
interface LoadFigures {
  itemsPerSecond: number;
  /** First submission started -> last batch closed (Temporal's close time), ms. */
  wallMs: number;
  /** First submission started -> last submission returned, ms. */
  submitAllMs: number;
  submitP50Ms: number;
  submitP99Ms: number;
  rejected: BatchLoad['rejected'];
  statuses: BatchLoad['statuses'];
  /** CPU cores used on average over the load by each process (CPU seconds / wall seconds). */
  cores: Record<string, number>;
}

interface LayoutRun {
  layout: OverloadLayout;
  /** The batch worker's nice value and scheduling policy as the kernel reports them. */
  batchWorkerPriority: string;
  alone: PredictSummary;
  during: PredictSummary;
  /** p99 of the answered (200) predictions during / alone. */
  p99Ratio: number;
  /** Where sampled predictions' time went, from their tasks' histories. */
  hops: { alone: PredictHops; during: PredictHops };
  backlog: {
    max: Record<'workflow' | 'activity', Backlog>;
    /** Load stopped -> first sample with no backlog of either type (ms); null past DRAIN_CAP_MS. */
    drainMs: number | null;
    samples: BacklogSample[];
  };
  withPredictions: LoadFigures;
  withoutPredictions: LoadFigures;
  /** Batch items/s with predictions / without. */
  throughputRatio: number;
}

/** Runs every layout and returns the BENCHMARKS.md section; writes bench/results/overload-<date>.json. */
export async function measureOverload(options: OverloadBenchOptions): Promise<string> {
  const {
    quick,
    layouts = Object.keys(LAYOUTS) as OverloadLayout[],
    command = commandLine('bench/overload.ts'),
  } = options;
  const sizes: Sizes = quick ? { batches: 200, aloneMs: 10_000 } : { batches: 1000, aloneMs: 30_000 };
  const host = machine();
  const runs: LayoutRun[] = [];
  for (const [i, layout] of layouts.entries()) {
    // One layout's failure must not lose the others' figures.
    const run = await measureLayout(layout, sizes, i % 2 === 1).catch((err: unknown) => {
      console.error(`overload ${layout}: the measurement failed:`, err);
      return undefined;
    });
    if (run) runs.push(run);
  }
  if (runs.length === 0) throw new Error('no layout could be measured');
  const file = writeResults('overload', {
    quick,
    command,
    machine: host,
    settings: { ...sizes, clients: CLIENTS, itemsPerBatch: ITEMS_PER_BATCH, predictRate: PREDICT_RATE },
    runs,
  });
  return report(runs, sizes, command, host, file);
}

const log = (layout: OverloadLayout, line: string) => console.error(`overload ${layout}: ${line}`);

const predictOptions = (stack: BatchlineStack) => ({
  apiUrl: stack.apiUrl,
  model: MODEL,
  inputs: itemsOf(MODEL, 100),
  ratePerSecond: PREDICT_RATE,
  timeoutMs: PREDICT_TIMEOUT_MS,
  graceMs: ANSWER_GRACE_MS,
});

const loadOptions = (stack: BatchlineStack, layout: OverloadLayout, sizes: Sizes) => ({
  apiUrl: stack.apiUrl,
  model: MODEL,
  items: itemsOf(MODEL, ITEMS_PER_BATCH),
  batches: sizes.batches,
  clients: CLIENTS,
  onProgress: (line: string) => log(layout, line),
  // 1,000 batches run side by side and end together near the end of the load: a long wait for the first end is
  // not a stall.
  stallTimeoutMs: 30 * 60_000,
});

/** A fresh stack of `layout` with a Temporal client beside it, stopped once `use` is done. */
async function withStack<T>(
  layout: OverloadLayout,
  use: (stack: BatchlineStack, client: Client) => Promise<T>,
): Promise<T> {
  const stack = await startBatchlineStack({}, { workers: LAYOUTS[layout] });
  try {
    const connection = await connectTemporal(stack.config.TEMPORAL_ADDRESS);
    try {
      return await use(stack, new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE }));
    } finally {
      await connection.close();
    }
  } finally {
    await stack.stop();
  }
}

async function measureLayout(layout: OverloadLayout, sizes: Sizes, withoutFirst: boolean): Promise<LayoutRun> {
  const withPredictions = () =>
    withStack(layout, (stack, client) => measureWithPredictions(layout, sizes, stack, client));
  // The same load without predictions, on a fresh stack of the same layout.
  const withoutPredictionsRun = () =>
    withStack(layout, async (stack, client) => {
      const cpu = cpuMeter(stack);
      const load = await runBatchLoad(loadOptions(stack, layout, sizes));
      return loadFigures(client, load, sizes, cpu.cores());
    });
  // Which of the two runs first alternates between layouts, so neither always meets a warmer machine.
  let part: Awaited<ReturnType<typeof withPredictions>>;
  let withoutPredictions: LoadFigures;
  if (withoutFirst) {
    withoutPredictions = await withoutPredictionsRun();
    part = await withPredictions();
  } else {
    part = await withPredictions();
    withoutPredictions = await withoutPredictionsRun();
  }
  const throughputRatio = part.withPredictions.itemsPerSecond / withoutPredictions.itemsPerSecond;
  log(
    layout,
    `batch items/s ${Math.round(part.withPredictions.itemsPerSecond)} with predictions, ${Math.round(withoutPredictions.itemsPerSecond)} without (${ratio(throughputRatio)}x)`,
  );
  return { ...part, withoutPredictions, throughputRatio };
}

/** Predictions alone, then during the load, on one stack, with the interactive queue's backlog sampled throughout. */
async function measureWithPredictions(
  layout: OverloadLayout,
  sizes: Sizes,
  stack: BatchlineStack,
  client: Client,
): Promise<Omit<LayoutRun, 'withoutPredictions' | 'throughputRatio'>> {
  const sampler = sampleBacklog(client, stack.config.INTERACTIVE_TASK_QUEUE);
  try {
    const batchWorkerPriority = schedulingOf(stack.worker.pid!);
    log(layout, `stack up; batch worker ${batchWorkerPriority}`);
    await predictFor(predictOptions(stack), WARM_UP_MS);
    const aloneOutcomes = await predictFor(predictOptions(stack), sizes.aloneMs);
    const alone = summarizePredicts(aloneOutcomes);
    log(layout, `alone: ${line(alone)}`);
    const cpu = cpuMeter(stack);
    const stream = startPredictStream(predictOptions(stack));
    let load: BatchLoad;
    try {
      load = await runBatchLoad(loadOptions(stack, layout, sizes));
    } finally {
      stream.stop(); // the load has stopped: so do the predictions
    }
    const cores = cpu.cores();
    const stoppedAt = load.endSeenAtMs;
    log(layout, 'load ended; waiting for the interactive backlog to empty');
    const emptyAt = await sampler.untilEmpty(stoppedAt, DRAIN_CAP_MS);
    const duringOutcomes = await stream.done;
    const during = summarizePredicts(duringOutcomes);
    log(layout, `during: ${line(during)}`);
    return {
      layout,
      batchWorkerPriority,
      alone,
      during,
      p99Ratio: during.okP99Ms / alone.okP99Ms,
      hops: {
        alone: await predictHops(client, aloneOutcomes, HOP_SAMPLE),
        during: await predictHops(client, duringOutcomes, HOP_SAMPLE),
      },
      backlog: {
        max: maxBacklog(sampler.samples),
        drainMs: emptyAt === undefined ? null : emptyAt - stoppedAt,
        samples: sampler.samples,
      },
      withPredictions: await loadFigures(client, load, sizes, cores),
    };
  } finally {
    await sampler.stop();
  }
}

/** The load's figures, its end taken from Temporal's close time of the last batch workflow (the stack is fresh). */
async function loadFigures(
  client: Client,
  load: BatchLoad,
  sizes: Sizes,
  cores: Record<string, number>,
): Promise<LoadFigures> {
  let lastCloseMs = 0;
  for await (const wf of client.workflow.list({ query: `WorkflowType = 'batchWorkflow'` })) {
    lastCloseMs = Math.max(lastCloseMs, wf.closeTime?.getTime() ?? 0);
  }
  const wallMs = (lastCloseMs || load.endSeenAtMs) - load.startedAtMs;
  return {
    itemsPerSecond: (sizes.batches * ITEMS_PER_BATCH) / (wallMs / 1000),
    wallMs,
    submitAllMs: load.submittedAtMs - load.startedAtMs,
    submitP50Ms: load.submitP50Ms,
    submitP99Ms: load.submitP99Ms,
    rejected: load.rejected,
    statuses: load.statuses,
    cores,
  };
}

/** CPU seconds of the stack's processes from now on, as cores used on average. */
function cpuMeter(stack: BatchlineStack): { cores(): Record<string, number> } {
  const pids: Record<string, number | undefined> = {
    temporal: stack.temporal.child.pid,
    'batch worker': stack.worker.pid,
    'interactive worker': stack.interactiveWorker?.pid,
    api: stack.api.pid,
  };
  const read = () => Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, pid ? cpuSeconds(pid) : NaN]));
  const before = read();
  const t0 = performance.now();
  return {
    cores() {
      const after = read();
      const s = (performance.now() - t0) / 1000;
      return Object.fromEntries(
        Object.keys(pids).map((k) => [k, Math.round((((after[k] ?? NaN) - (before[k] ?? NaN)) / s) * 100) / 100]),
      );
    },
  };
}

/** `nice 19, SCHED_IDLE`: what the kernel says of a process's main thread (/proc/<pid>/stat). */
function schedulingOf(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3 (state) on
    const policy =
      { 0: 'SCHED_OTHER', 3: 'SCHED_BATCH', 5: 'SCHED_IDLE' }[Number(fields[38])] ?? `policy ${fields[38]}`;
    return `nice ${fields[16]}, ${policy}`;
  } catch {
    return 'unknown';
  }
}

const n = (v: number, d = 0) =>
  Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '–';
const others = (s: PredictSummary) =>
  Object.entries(s.other)
    .map(([k, v]) => `${n(v)} × ${k}`)
    .join(', ') || '0';
const line = (s: PredictSummary) =>
  `${s.sent} sent: ${s.ok} × 200 (p50 ${n(s.okP50Ms)} / p99 ${n(s.okP99Ms)} ms), ${s.shed} × 503 (${s.shedWithoutRetryAfter} without Retry-After), ${s.timedOut} × 504, other ${others(s)}, ${s.unanswered} unanswered`;
const seconds = (ms: number) => `${n(ms / 1000, 1)} s`;

function report(runs: LayoutRun[], sizes: Sizes, command: string, host: Record<string, unknown>, file: string): string {
  const date = new Date().toISOString().slice(0, 10);
  const layoutNote: Record<OverloadLayout, string> = {
    normal:
      '*normal*: a batch worker (`WORKER_QUEUES=batch`) and an interactive worker (`WORKER_QUEUES=interactive`), both at normal CPU priority (nice 0, no SCHED_IDLE): isolation that does not lean on the OS scheduler',
    dev: `*dev*: \`batchline dev\`'s two workers, the batch worker at ${BATCH_WORKER_PRIORITY}`,
  };
  const lines = [
    '## Online predictions under overload (issue 24)',
    '',
    `Command: \`${command}\`, ${date}. Machine: ${String(host.cpus)} cores (${String(host.cpuModel)}), ${String(host.memGiB)} GiB, Node ${String(host.node)}; load average at the start ${(host.loadAverage as number[]).map((x) => n(x, 2)).join(' / ')}.`,
    `Each layout on the Temporal dev server with one API (rate limit off), all compiled, on this one machine: ${runs.map((r) => layoutNote[r.layout]).join('; ')}.`,
    `The load: ${CLIENTS} clients each POST a JSON batch of ${ITEMS_PER_BATCH} ${MODEL} items to /v1/batches (default options: one remote activity per item, 16 in flight per batch) as soon as their previous one returned, ${n(sizes.batches)} batches in all; their ends are read from the batch listing every 2 s.`,
    `Predictions: \`POST /v1/predict\` at ${PREDICT_RATE}/s, open loop (each on schedule whether earlier ones answered), \`timeoutMs\` ${n(PREDICT_TIMEOUT_MS)}; *alone* is ${n(sizes.aloneMs / 1000)} s of them on the same stack first (after ${n(WARM_UP_MS / 1000)} s of warm-up), *during* runs from the first submission until every batch has ended. *Unanswered*: no whole answer ${n((PREDICT_TIMEOUT_MS + ANSWER_GRACE_MS) / 1000)} s after sending (aborted). One run per layout. Raw figures: [${file}](${file}).`,
    '',
    '### Sync predictions',
    '',
    '| layout | | sent | 200 | 200 p50 / p99 ms | 503 (without Retry-After) | 504 | other | unanswered | p99 during / alone |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of runs) {
    for (const [phase, s] of [
      ['alone', r.alone],
      ['during the load', r.during],
    ] as const) {
      lines.push(
        `| ${r.layout} | ${phase} | ${n(s.sent)} | ${n(s.ok)} | ${n(s.okP50Ms)} / ${n(s.okP99Ms)} | ${n(s.shed)} (${n(s.shedWithoutRetryAfter)}) | ${n(s.timedOut)} | ${others(s)} | ${n(s.unanswered)} | ${phase === 'alone' ? '' : ratio(r.p99Ratio)} |`,
      );
    }
  }
  lines.push(
    '',
    `### Where a prediction's time goes (p50 / p99 ms)`,
    '',
    `Up to ${HOP_SAMPLE} requests per phase that got an answer naming their task (200, 504), evenly spread, each set beside its task's workflow history (one machine, one clock): the API starting the task (request sent -> workflow started); its workflow task waiting on the interactive task queue (scheduled -> picked up); the interactive worker running it (the local predict activity inside); the answer reaching the client (workflow closed -> whole response read; 200s only).`,
    '',
    '| layout | | sampled | to task started | waiting on the queue | on the worker | closed -> client | client total |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const r of runs) {
    const h = (x: Hop) => `${n(x.p50Ms)} / ${n(x.p99Ms)}`;
    for (const [phase, x] of [
      ['alone', r.hops.alone],
      ['during the load', r.hops.during],
    ] as const) {
      lines.push(
        `| ${r.layout} | ${phase} | ${n(x.sampled)} | ${h(x.toStart)} | ${h(x.inQueue)} | ${h(x.onWorker)} | ${h(x.toClient)} | ${h(x.total)} |`,
      );
    }
  }
  lines.push(
    '',
    '### The interactive task queue (`batchline-interactive`), sampled every second',
    '',
    "Temporal's DescribeTaskQueue with `reportStats` (approximate backlog count and age of the oldest task); *drain*: from the moment the bench saw the last batch end and stopped sending predictions to the first sample with no backlog of either type.",
    '',
    '| layout | workflow tasks: max backlog (oldest) | activity tasks: max backlog (oldest) | drain after the load stopped |',
    '|---|---|---|---|',
  );
  for (const r of runs) {
    const b = (x: Backlog) => `${n(x.count)} (${seconds(x.ageMs)})`;
    const drain = r.backlog.drainMs === null ? `> ${n(DRAIN_CAP_MS / 1000)} s` : seconds(r.backlog.drainMs);
    lines.push(`| ${r.layout} | ${b(r.backlog.max.workflow)} | ${b(r.backlog.max.activity)} | ${drain} |`);
  }
  lines.push(
    '',
    '### The batch work',
    '',
    "Items/s from the first submission to the last batch workflow's close; *without predictions* is the same load on a fresh stack of the same layout. CPU: cores used on average over the load.",
    '',
    '| layout | items/s with predictions | without | with / without | wall s with / without | batches not completed | CPU with predictions: Temporal / batch worker / interactive worker / API |',
    '|---|---|---|---|---|---|---|',
  );
  for (const r of runs) {
    const w = r.withPredictions;
    const wo = r.withoutPredictions;
    const notCompleted = (f: LoadFigures) =>
      n(Object.entries(f.statuses).reduce((sum, [k, v]) => (k === 'completed' ? sum : sum + (v ?? 0)), 0));
    lines.push(
      `| ${r.layout} | ${n(w.itemsPerSecond)} | ${n(wo.itemsPerSecond)} | ${ratio(r.throughputRatio)} | ${n(w.wallMs / 1000)} / ${n(wo.wallMs / 1000)} | ${notCompleted(w)} / ${notCompleted(wo)} | ${['temporal', 'batch worker', 'interactive worker', 'api'].map((k) => n(w.cores[k] ?? NaN, 2)).join(' / ')} |`,
    );
  }
  const refused = runs.filter((r) => Object.keys(r.withPredictions.rejected).length > 0);
  if (refused.length > 0) {
    lines.push(
      '',
      `Submissions refused and sent again: ${refused.map((r) => `${r.layout} ${JSON.stringify(r.withPredictions.rejected)}`).join('; ')}.`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const usage =
    'usage: node --import tsx bench/overload.ts [--quick] [--layouts normal,dev]\n' +
    '  --quick     200 batches and 10 s of predictions alone (default 1,000 batches, 30 s)\n' +
    '  --layouts   worker layouts to measure, in order: normal (batch worker at normal priority), dev (niced)';
  const { values } = parseBenchArgs(usage, {
    options: {
      quick: { type: 'boolean', default: false },
      layouts: { type: 'string', default: 'normal,dev' },
    },
  });
  const layouts = values.layouts.split(',').map((s) => s.trim());
  const bad = layouts.find((l) => !isLayout(l));
  if (bad !== undefined || layouts.length === 0) {
    console.error(`--layouts: unknown layout '${bad ?? ''}' (normal, dev)\n${usage}`);
    process.exit(2);
  }
  const body = await measureOverload({ quick: values.quick, layouts: layouts as OverloadLayout[] });
  updateBenchmarksMd('overload', body);
  console.log(body);
  console.error('wrote the overload section of BENCHMARKS.md');
}
