// bench/tune: where a per-item batch's time goes, and what the knobs do. Runs the same digits items through
// batchline per item under each setting in turn (a fresh stack each), and reports items/s, time to first result
// and the CPU each process spent per 1,000 items (Temporal dev server, worker, API).
// Writes bench/results/tune-<date>.json and the "tune" section of BENCHMARKS.md.
//
//   node --import tsx bench/tune.ts [--items N] [--only i,j,...] [--rounds N] [--warm-up N] [--label TEXT]
//   (after npm run build) --only: run only these steps (indexes into STEPS); --rounds: run the steps this many times,
//   alternating (each row then shows the median and range over its rounds); --warm-up: a batch of N items on each
//   fresh stack before the measured one (default 0: the stack's first batch is measured); --label: names the
//   section and the results file
import type { BatchOptions } from '../src/contracts/batch.js';
import type { DynamicConfig } from '../src/dynamic-config.js';
import { commandLine, intArg, parseBenchArgs } from './lib/args.js';
import { itemsOf } from './lib/model-items.js';
import { fmt, machine, stat, updateBenchmarksMd, writeResults } from './lib/report.js';
import { BATCH_WORKER_PRIORITY, runBatchline, startBatchlineStack, type BatchlineRun } from './systems/batchline.js';

const USAGE =
  'usage: node --import tsx bench/tune.ts [--items N] [--only i,j,...] [--rounds N] [--warm-up N] [--label TEXT]';
const { values: args } = parseBenchArgs(USAGE, {
  options: {
    items: { type: 'string', default: '10000' },
    only: { type: 'string' },
    rounds: { type: 'string', default: '1' },
    'warm-up': { type: 'string', default: '0' },
    label: { type: 'string' },
  },
});
const ITEMS = intArg(USAGE, 'items', args.items);
const ROUNDS = intArg(USAGE, 'rounds', args.rounds);
const WARM_UP = intArg(USAGE, 'warm-up', args['warm-up'], 0);
/** The Temporal server's own limit on transfer-queue loads per shard, which batchline's dev server raises. */
const TRANSFER_POLL_DEFAULT = { 'history.transferProcessorMaxPollRPS': 20 };
/** Matching without task priorities (the server's default before 1.30), which batchline's dynamic config turns on. */
const NO_PRIORITY_MATCHER = { 'matching.useNewMatcher': false };

const STEPS: {
  name: string;
  options: Partial<BatchOptions>;
  env?: Record<string, string>;
  /** Over each worker's own environment (bench/systems/batchline.ts StackOptions.workerEnv). */
  workerEnv?: Record<string, string>;
  dynamicConfig?: DynamicConfig;
}[] = [
  { name: 'defaults: 16 in flight per shard, 2 shards (32)', options: {} },
  { name: '64 per shard, 2 shards (128)', options: { concurrency: 64 } },
  { name: '64 per shard, 4 shards (256)', options: { concurrency: 64, maxConcurrentShards: 4 } },
  {
    name: '128 per shard, 4 shards (512), shards of 2,500',
    options: { concurrency: 128, maxConcurrentShards: 4, shardSize: 2500 },
  },
  { name: 'chunked: 100 items per activity (reference)', options: { itemsPerActivity: 100, concurrency: 512 } },
  {
    name: 'chunked: 100 per activity, shards of 5,000',
    options: { itemsPerActivity: 100, concurrency: 512, shardSize: 5000 },
  },
  {
    name: 'chunked: 250 per activity, shards of 5,000',
    options: { itemsPerActivity: 250, concurrency: 512, shardSize: 5000 },
  },
  {
    name: 'chunked: 500 per activity, shards of 5,000',
    options: { itemsPerActivity: 500, concurrency: 512, shardSize: 5000 },
  },
  { name: 'local activities: 16 per shard, 2 shards (32)', options: { itemActivities: 'local' } },
  { name: 'local activities: 64 per shard, 2 shards (128)', options: { itemActivities: 'local', concurrency: 64 } },
  {
    name: 'local activities: 64 per shard, 2 shards of 5,000',
    options: { itemActivities: 'local', concurrency: 64, shardSize: 5000 },
  },
  {
    name: "local activities: 64 per shard, workflow stack traces at V8's default depth (WORKFLOW_STACK_TRACE_LIMIT=10)",
    options: { itemActivities: 'local', concurrency: 64 },
    env: { WORKFLOW_STACK_TRACE_LIMIT: '10' },
  },
  {
    name: '64 per shard, 2 shards (128), WORKFLOW_STACK_TRACE_LIMIT=10',
    options: { concurrency: 64 },
    env: { WORKFLOW_STACK_TRACE_LIMIT: '10' },
  },
  {
    name: '64 per shard, 2 shards (128), transfer queue loads at most 20/s (the server default)',
    options: { concurrency: 64 },
    dynamicConfig: TRANSFER_POLL_DEFAULT,
  },
  {
    name: 'local activities: 64 per shard, transfer queue loads at most 20/s (the server default)',
    options: { itemActivities: 'local', concurrency: 64 },
    dynamicConfig: TRANSFER_POLL_DEFAULT,
  },
  {
    name: '64 per shard, 2 shards (128), matching without task priorities (the server default before 1.30)',
    options: { concurrency: 64 },
    dynamicConfig: NO_PRIORITY_MATCHER,
  },
  {
    name: 'chunked: 100 per activity, matching without task priorities',
    options: { itemsPerActivity: 100, concurrency: 512 },
    dynamicConfig: NO_PRIORITY_MATCHER,
  },
  {
    name: 'local activities: 64 per shard, matching without task priorities',
    options: { itemActivities: 'local', concurrency: 64 },
    dynamicConfig: NO_PRIORITY_MATCHER,
  },
  {
    name: 'chunked: 1,000 per activity, shards of 5,000',
    options: { itemsPerActivity: 1000, concurrency: 512, shardSize: 5000 },
  },
  {
    name: 'chunked: 2,500 per activity, shards of 5,000',
    options: { itemsPerActivity: 2500, concurrency: 512, shardSize: 5000 },
  },
  {
    name: 'chunked: 5,000 per activity, shards of 5,000 (one chunk per shard)',
    options: { itemsPerActivity: 5000, concurrency: 512, shardSize: 5000 },
  },
  {
    name: 'chunked: 5,000 per activity, shards of 5,000, 4 shards at once',
    options: { itemsPerActivity: 5000, concurrency: 512, shardSize: 5000, maxConcurrentShards: 4 },
  },
  {
    name: 'chunked: 5,000 per activity, shards of 20,000 (four chunks per shard)',
    options: { itemsPerActivity: 5000, concurrency: 512, shardSize: 20000 },
  },
  {
    name: 'chunked: 5,000 per activity, shards of 20,000, 3 shards at once',
    options: { itemsPerActivity: 5000, concurrency: 512, shardSize: 20000, maxConcurrentShards: 3 },
  },
  {
    name: 'chunked: 5,000 per activity, shards of 20,000, 5 shards at once',
    options: { itemsPerActivity: 5000, concurrency: 512, shardSize: 20000, maxConcurrentShards: 5 },
  },
  {
    name: "chunked: 5,000 per activity, shards of 20,000, the workers with V8's default young generation",
    options: { itemsPerActivity: 5000, concurrency: 512, shardSize: 20000 },
    workerEnv: { NODE_OPTIONS: '' }, // WORKER_PROCESS_ENV's --max-semi-space-size left out
  },
];

const only = args.only?.split(',').map((i) => intArg(USAGE, 'only', i.trim(), 0));
const unknown = only?.filter((i) => i >= STEPS.length);
if (unknown?.length) {
  console.error(`--only: no step ${unknown.join(', ')}; steps are 0 to ${STEPS.length - 1}\n${USAGE}`);
  process.exit(2);
}
const label = args.label ? ` (${args.label})` : '';
const items = itemsOf('digits', ITEMS);
/** Each selected step's runs, one per round; the rounds alternate the steps, a fresh stack per run. */
const selected = STEPS.filter((_, i) => !only || only.includes(i));
const rows: { step: string; runs: Omit<BatchlineRun, 'latencyMs'>[] }[] = selected.map((step) => ({
  step: step.name + label,
  runs: [],
}));
for (let round = 0; round < ROUNDS; round++) {
  for (const [k, step] of selected.entries()) {
    const stack = await startBatchlineStack(step.env, {
      dynamicConfig: step.dynamicConfig,
      ...(step.workerEnv ? { workerEnv: step.workerEnv } : {}),
    });
    try {
      if (WARM_UP > 0) await runBatchline(stack, 'digits', itemsOf('digits', WARM_UP), step.options, 'warm-up');
      const { latencyMs: _latencies, ...run } = await runBatchline(stack, 'digits', items, step.options, 'batchline');
      rows[k]!.runs.push(run);
      console.error(
        `${step.name}: ${Math.round(ITEMS / (run.wallMs / 1000))} items/s, cpu/1k items ${JSON.stringify(run.cpuPerThousandItems)}`,
      );
    } finally {
      await stack.stop();
    }
  }
}
const section = label
  ? `tune-${label
      .replace(/[^a-z0-9]+/gi, '-')
      .replace(/^-|-$/g, '')
      .toLowerCase()}`
  : 'tune';
const file = writeResults(section, { items: ITEMS, rounds: ROUNDS, warmUp: WARM_UP, machine: machine(), rows });
const n = (v: number, d = 0) => v.toLocaleString('en-US', { maximumFractionDigits: d });
updateBenchmarksMd(
  section,
  [
    `## Where a per-item batch's time goes, and tuning${label} (\`${commandLine('bench/tune.ts')}\`)`,
    '',
    `${n(ITEMS)} digits items per step, one fresh stack each (dev server, \`batchline dev\`'s batch worker at ${BATCH_WORKER_PRIORITY} and idle`,
    `interactive worker, API); CPU seconds per 1,000 items of the dev server, the batch worker and the API, on ${machine().cpus} cores.`,
    ...(WARM_UP > 0 ? [`The measured batch ran after a warm-up batch of ${n(WARM_UP)} items on the same stack.`] : []),
    ROUNDS > 1
      ? `${ROUNDS} rounds, the steps alternating: items/s and first result are the median (min–max) over the rounds, the other columns medians.`
      : 'One run per step.',
    `Raw figures: [${file}](${file}).`,
    '',
    '| step | items/s | first result ms from submit start | CPU s / 1k items: Temporal | worker | API | history events / item | max events / execution |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(({ step, runs }) => {
      const of = (f: (run: (typeof runs)[number]) => number) => stat(runs.map(f));
      const cpu = (k: 'temporal' | 'worker' | 'api') => n(of((r) => r.cpuPerThousandItems[k]).median, 3);
      return `| ${step} | ${fmt(of((r) => r.items / (r.wallMs / 1000)))} | ${fmt(of((r) => r.firstResultMs))} | ${cpu('temporal')} | ${cpu('worker')} | ${cpu('api')} | ${n(of((r) => r.historyEvents.perItem).median, 2)} | ${n(of((r) => r.historyEvents.maxPerExecution).median)} |`;
    }),
  ].join('\n'),
);
console.error(`wrote ${file} and BENCHMARKS.md`);
