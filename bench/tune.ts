// bench/tune: where a per-item batch's time goes, and what the knobs do. Runs the same digits items through
// batchline per item under each setting in turn (a fresh stack each), and reports items/s, time to first result
// and the CPU each process spent per 1,000 items (Temporal dev server, worker, API).
// Writes bench/results/tune-<date>.json and the "tune" section of BENCHMARKS.md.
//
//   node --import tsx bench/tune.ts [--items N] [--only i,j,...] [--label TEXT]     (after npm run build)
//   --only: run only these steps (indexes into STEPS); --label: names the section and the results file
import type { BatchOptions } from '../src/contracts/batch.js';
import type { DynamicConfig } from '../src/dynamic-config.js';
import { commandLine, intArg, parseBenchArgs } from './lib/args.js';
import { itemsOf } from './lib/model-items.js';
import { machine, updateBenchmarksMd, writeResults } from './lib/report.js';
import { BATCH_WORKER_PRIORITY, runBatchline, startBatchlineStack, type BatchlineRun } from './systems/batchline.js';

const USAGE = 'usage: node --import tsx bench/tune.ts [--items N] [--only i,j,...] [--label TEXT]';
const { values: args } = parseBenchArgs(USAGE, {
  options: { items: { type: 'string', default: '10000' }, only: { type: 'string' }, label: { type: 'string' } },
});
const ITEMS = intArg(USAGE, 'items', args.items);
/** The Temporal server's own limit on transfer-queue loads per shard, which batchline's dev server raises. */
const TRANSFER_POLL_DEFAULT = { 'history.transferProcessorMaxPollRPS': 20 };
/** Matching without task priorities (the server's default before 1.30), which batchline's dynamic config turns on. */
const NO_PRIORITY_MATCHER = { 'matching.useNewMatcher': false };

const STEPS: {
  name: string;
  options: Partial<BatchOptions>;
  env?: Record<string, string>;
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
];

const only = args.only?.split(',').map((i) => intArg(USAGE, 'only', i.trim(), 0));
const unknown = only?.filter((i) => i >= STEPS.length);
if (unknown?.length) {
  console.error(`--only: no step ${unknown.join(', ')}; steps are 0 to ${STEPS.length - 1}\n${USAGE}`);
  process.exit(2);
}
const label = args.label ? ` (${args.label})` : '';
const items = itemsOf('digits', ITEMS);
const rows: { step: string; run: Omit<BatchlineRun, 'latencyMs'> }[] = [];
for (const [i, step] of STEPS.entries()) {
  if (only && !only.includes(i)) continue;
  const stack = await startBatchlineStack(step.env, { dynamicConfig: step.dynamicConfig });
  try {
    const { latencyMs: _latencies, ...run } = await runBatchline(stack, 'digits', items, step.options, 'batchline');
    rows.push({ step: step.name + label, run });
    console.error(
      `${step.name}: ${Math.round(ITEMS / (run.wallMs / 1000))} items/s, cpu/1k items ${JSON.stringify(run.cpuPerThousandItems)}`,
    );
  } finally {
    await stack.stop();
  }
}
const section = label
  ? `tune-${label
      .replace(/[^a-z0-9]+/gi, '-')
      .replace(/^-|-$/g, '')
      .toLowerCase()}`
  : 'tune';
const file = writeResults(section, { items: ITEMS, machine: machine(), rows });
const n = (v: number, d = 0) => v.toLocaleString('en-US', { maximumFractionDigits: d });
updateBenchmarksMd(
  section,
  [
    `## Where a per-item batch's time goes, and tuning${label} (\`${commandLine('bench/tune.ts')}\`)`,
    '',
    `${n(ITEMS)} digits items per step, one fresh stack each (dev server, \`batchline dev\`'s batch worker at ${BATCH_WORKER_PRIORITY} and idle`,
    `interactive worker, API); CPU seconds per 1,000 items of the dev server, the batch worker and the API, on ${machine().cpus} cores.`,
    `Raw figures: [${file}](${file}).`,
    '',
    '| step | items/s | first result ms from submit start | CPU s / 1k items: Temporal | worker | API | history events / item | max events / execution |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(
      ({ step, run }) =>
        `| ${step} | ${n(run.items / (run.wallMs / 1000))} | ${n(run.firstResultMs)} | ${n(run.cpuPerThousandItems.temporal, 2)} | ${n(run.cpuPerThousandItems.worker, 2)} | ${n(run.cpuPerThousandItems.api, 2)} | ${n(run.historyEvents.perItem, 2)} | ${n(run.historyEvents.maxPerExecution)} |`,
    ),
  ].join('\n'),
);
console.error(`wrote ${file} and BENCHMARKS.md`);
