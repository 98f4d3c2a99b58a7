// Where a chunked batch's time goes: one chunked batch (digits unless --model names another) through the compiled
// stack (dev server, batch worker, API) with every batchline process under --cpu-prof, then each process's samples
// attributed to the deepest batchline function on their stack (its own code and what it calls: the SQLite driver,
// JSON, the Temporal SDK ...). Samples with no batchline frame are named by their own frame (the Temporal SDK,
// Node's internals, GC, idle). Prints where the batch's wall time went (from its Temporal histories:
// bench/lib/chunk-timeline.ts), its CPU per item by thread (from /proc), and a table per thread, in µs per item.
//
//   npm run build && node --import tsx bench/profile-chunk.ts [--model M] [--items N] [--top K]
//     [--items-per-activity N] [--concurrency N] [--shard-size N] [--max-concurrent-shards N] [--item-activities local]
//     (default: CHUNKED_OPTIONS in bench/systems/batchline.ts; `--items-per-activity 1 --concurrency 64
//     --item-activities local` profiles the per-item local mode instead)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { connectTemporal } from '../src/client/connection.js';
import type { BatchOptions } from '../src/contracts/batch.js';
import { parseBenchArgs } from './lib/args.js';
import { chunkTimeline, type ChunkTimeline } from './lib/chunk-timeline.js';
import { itemsOf, warmUpItems } from './lib/model-items.js';
import { REPO_ROOT } from './lib/report.js';
import { threadCpuSeconds } from './lib/system-run.js';
import { CHUNKED_OPTIONS, runBatchline, startBatchlineStack } from './systems/batchline.js';

const { values: args } = parseBenchArgs(
  'usage: npm run build && node --import tsx bench/profile-chunk.ts [--model M] [--items N] [--top K] [--items-per-activity N] [--concurrency N] [--shard-size N] [--max-concurrent-shards N] [--item-activities local]',
  {
    options: {
      model: { type: 'string', default: 'digits' },
      items: { type: 'string', default: '100000' },
      top: { type: 'string', default: '14' },
      'items-per-activity': { type: 'string', default: String(CHUNKED_OPTIONS.itemsPerActivity) },
      concurrency: { type: 'string', default: String(CHUNKED_OPTIONS.concurrency) },
      'shard-size': { type: 'string', default: String(CHUNKED_OPTIONS.shardSize) },
      'max-concurrent-shards': { type: 'string' },
      'item-activities': { type: 'string' },
    },
  },
);
const MODEL = args.model;
const ITEMS = Number(args.items);
const TOP = Number(args.top);
/** The benches' chunked setting (CHUNKED_OPTIONS) by default. */
const OPTIONS = {
  itemsPerActivity: Number(args['items-per-activity']),
  concurrency: Number(args.concurrency),
  shardSize: Number(args['shard-size']),
  ...(args['max-concurrent-shards'] || CHUNKED_OPTIONS.maxConcurrentShards
    ? { maxConcurrentShards: Number(args['max-concurrent-shards'] ?? CHUNKED_OPTIONS.maxConcurrentShards) }
    : {}),
  ...(args['item-activities'] ? { itemActivities: args['item-activities'] as BatchOptions['itemActivities'] } : {}),
};
/** A tenth of the batch, at most 5,000 items (as compare.ts warms every system). */
const WARM_UP = warmUpItems(ITEMS);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-profile-'));
const stack = await startBatchlineStack(
  { LOG_LEVEL: 'warn' },
  { workers: 'split-normal-priority', execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`] },
);
const roles = new Map<number, string>([
  [stack.worker.pid!, 'batch worker'],
  [stack.api.pid!, 'API'],
]);
let itemsPerSecond: number;
let cpu: { temporal: number; worker: number; api: number };
let submitMs: number;
let timeline: ChunkTimeline;
/** µs of CPU per item of the measured batch, per thread of the batch worker and the API (from /proc). */
const threadCpu: { role: string; tid: number; name: string; main: boolean; usPerItem: number }[] = [];
try {
  // A warm-up batch first, so model loading and first-use compilation stay out of the profile's share.
  await runBatchline(stack, MODEL, itemsOf(MODEL, WARM_UP), OPTIONS, 'warm-up');
  const before = new Map([...roles.keys()].map((pid) => [pid, threadCpuSeconds(pid)]));
  const since = new Date(); // after the warm-up's executions started: only the measured batch's are read
  const run = await runBatchline(stack, MODEL, itemsOf(MODEL, ITEMS), OPTIONS, 'chunked');
  for (const [pid, role] of roles) {
    for (const [tid, { name, seconds }] of threadCpuSeconds(pid)) {
      const usPerItem = ((seconds - (before.get(pid)!.get(tid)?.seconds ?? 0)) * 1e6) / ITEMS;
      threadCpu.push({ role, tid, name, main: tid === pid, usPerItem });
    }
  }
  itemsPerSecond = run.items / (run.wallMs / 1000); // from the submission's start to the batch's end
  cpu = run.cpuPerThousandItems;
  submitMs = run.submitMs;
  const connection = await connectTemporal(stack.config.TEMPORAL_ADDRESS);
  try {
    timeline = await chunkTimeline(new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE }), since);
  } finally {
    await connection.close();
  }
} finally {
  await stack.stop();
}

const REPO_CODE = /\/(dist\/)?(src|activities|workflows)\//;

/** The frame a sample is charged to: the deepest batchline function on its stack, else its own frame. */
function owners(profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) => {
    const file = n.callFrame.url ? path.relative(REPO_ROOT, n.callFrame.url.replace(/^file:\/\//, '')) : '';
    const where = file.startsWith('node_modules/')
      ? file
          .split('/')
          .slice(0, file.startsWith('node_modules/@') ? 3 : 2)
          .join('/')
      : file;
    const line = REPO_CODE.test(file) ? `:${n.callFrame.lineNumber + 1}` : '';
    return `${n.callFrame.functionName || '(anonymous)'}${where ? ` ${where}${line}` : ''}`;
  };
  const ownerOf = new Map<number, string>();
  const owner = (id: number): string => {
    const cached = ownerOf.get(id);
    if (cached) return cached;
    let cur: number | undefined = id;
    let found: string | undefined;
    while (cur !== undefined) {
      const n = byId.get(cur)!;
      if (REPO_CODE.test(n.callFrame.url) && !n.callFrame.url.includes('node_modules')) {
        found = label(n);
        break;
      }
      cur = parent.get(cur);
    }
    const name = found ?? label(byId.get(id)!);
    ownerOf.set(id, name);
    return name;
  };
  const ms = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const name = owner(id);
    ms.set(name, (ms.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return ms;
}

console.log(`# ${MODEL}, ${ITEMS} items, ${JSON.stringify(OPTIONS)}: ${Math.round(itemsPerSecond)} items/s`);
console.log(
  `CPU seconds per 1,000 items (the measured batch, profiler on): Temporal dev server ${cpu.temporal.toFixed(3)}, batch worker ${cpu.worker.toFixed(3)}, API ${cpu.api.toFixed(3)}`,
);
const ms = (x: number) => x.toFixed(1);
console.log(
  `\nWall time, from the histories of the batch's ${timeline.executions} executions: the submission took ${Math.round(submitMs)} ms; ` +
    `${timeline.chunks} chunks waited ${ms(timeline.chunkDispatchMs)} ms for a worker and ran ${ms(timeline.chunkRunMs)} ms on average, ` +
    `${timeline.chunksInFlight.toFixed(2)} at once over the ${timeline.spanMs} ms from the first history event to the last; ` +
    `a shard scheduled its next chunk ${ms(timeline.gapMs)} ms after one completed; ` +
    `its ${timeline.workflowTasks} workflow tasks waited ${ms(timeline.workflowTaskQueueMs)} ms and ran ${ms(timeline.workflowTaskRunMs)} ms on average.`,
);
console.log(
  '\nCPU µs per item of the measured batch by thread (/proc, in ticks of 10 ms; the main thread is the one whose id is the process id; Node names its other threads "node"):',
);
console.log('| process | thread | µs per item |\n| --- | --- | ---: |');
for (const t of threadCpu.filter((t) => t.usPerItem >= 0.5).sort((a, b) => b.usPerItem - a.usPerItem)) {
  console.log(`| ${t.role} | ${t.main ? 'main' : `${t.tid} (${t.name})`} | ${t.usPerItem.toFixed(1)} |`);
}
console.log(
  `\n(the tables below, µs per item over both batches: the profiles cover the stack's life, a warm-up batch of ${WARM_UP} items, then this one)`,
);
for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const [, , , pid, thread] = file.split('.'); // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile
  const role = roles.get(Number(pid));
  if (!role) continue; // the interactive worker
  const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
  const ms = owners(profile);
  const busy = [...ms].filter(([name]) => !name.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
  if (busy < 100) continue; // a thread that did next to nothing
  console.log(
    `\n## ${role}, thread ${thread}: ${Math.round(busy)} ms busy, ${((busy * 1000) / (ITEMS + WARM_UP)).toFixed(1)} µs/item`,
  );
  console.log('| µs per item | share | charged to |\n| ---: | ---: | --- |');
  for (const [name, v] of [...ms]
    .filter(([n]) => !n.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)) {
    console.log(`| ${((v * 1000) / (ITEMS + WARM_UP)).toFixed(2)} | ${((100 * v) / busy).toFixed(1)}% | \`${name}\` |`);
  }
}
console.log(`\nprofiles: ${dir}`);
