// bench/first-result: how long a client waits for a batch's first result on a warm stack, and which hop the time
// goes to, from Temporal's own event times. Per mode: one stack (as `batchline dev` runs it), a 100-item warm-up
// batch, then RUNS batches of 10k digits items, each cancelled once its first result has arrived.
// Writes bench/results/first-result-<date>.json and the first-result section of BENCHMARKS.md.
//
//   node --import tsx bench/first-result.ts [--runs N]     (after npm run build)
import { Client } from '@temporalio/client';
import { batchWorkflowId } from '../src/client/batch-client.js';
import { BatchOptions } from '../src/contracts/batch.js';
import { itemStoreFile, SqliteItemStore } from '../src/stores/sqlite-item-store.js';
import { readSse } from '../test/helpers/sse.js';
import { intArg, parseBenchArgs } from './lib/args.js';
import { itemsOf } from './lib/model-items.js';
import { fmt, machine, stat, updateBenchmarksMd, writeResults, type Stat } from './lib/report.js';
import { CHUNKED_OPTIONS, runBatchline, startBatchlineStack, type BatchlineStack } from './systems/batchline.js';
import { connectTemporal } from '../src/client/connection.js';

const USAGE = 'usage: node --import tsx bench/first-result.ts [--runs N]   (N batches per mode, default 7)';
const { values: args } = parseBenchArgs(USAGE, { options: { runs: { type: 'string', default: '7' } } });
const RUNS = intArg(USAGE, 'runs', args.runs);
const ITEMS = 10_000;
const MODES: { name: string; options: Partial<BatchOptions> }[] = [
  { name: 'per item (remote)', options: { concurrency: 64 } },
  { name: 'per item local', options: { concurrency: 64, itemActivities: 'local' } },
  { name: 'chunked', options: CHUNKED_OPTIONS },
];

/** Milliseconds from submission returned to each step of the first result's path. */
interface Path {
  /** The batch workflow's start event (the API started it before answering). */
  parentStarted: number;
  /** The batch's first workflow task completed: it has started its first shard. */
  parentFirstTask: number;
  /** The first shard's first workflow task started on the worker. */
  shardFirstTask: number;
  /** That task completed: its first items (or chunks) are scheduled. */
  shardFirstTaskDone: number;
  /** The first item to finish began its attempt (activity start, store read). */
  attemptStarted: number;
  /** Its result stored. */
  stored: number;
  /** The client read its SSE event. */
  client: number;
}

async function firstResult(
  stack: BatchlineStack,
  temporal: Client,
  store: SqliteItemStore,
  body: string,
  options: Partial<BatchOptions>,
): Promise<Path> {
  const query = new URLSearchParams({
    model: 'digits',
    ...Object.fromEntries(Object.entries(options).map(([k, v]) => [k, String(v)])),
  });
  const res = await fetch(`${stack.apiUrl}/v1/batches?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body,
  });
  const returned = Date.now();
  const { id } = (await res.json()) as { id: string };
  if (res.status !== 202) throw new Error(`submission failed: ${res.status}`);
  const stop = new AbortController();
  let clientMs = NaN;
  for await (const e of readSse(`${stack.apiUrl}/v1/batches/${id}/events`, { signal: stop.signal })) {
    if (e.event === 'item.succeeded' || e.event === 'item.failed') {
      clientMs = Date.now() - returned;
      break;
    }
  }
  stop.abort();
  const results = (await store.listResults(id, { limit: 10_000 })).results;
  const first = results.reduce((a, b) => (Date.parse(b.finishedAt) < Date.parse(a.finishedAt) ? b : a));
  await fetch(`${stack.apiUrl}/v1/batches/${id}/cancel`, { method: 'POST' });
  for (let t = Date.now(); Date.now() - t < 120_000; await new Promise((r) => setTimeout(r, 200))) {
    const s = (await (await fetch(`${stack.apiUrl}/v1/batches/${id}`)).json()) as { status: string };
    if (s.status !== 'running') break;
  }
  const at = (e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }) =>
    Number(e.eventTime!.seconds) * 1000 + Math.round((e.eventTime!.nanos ?? 0) / 1e6) - returned;
  const parent = (await temporal.workflow.getHandle(batchWorkflowId(id)).fetchHistory()).events!;
  // A batch of one shard's size or less runs its items itself: then its own history holds the "shard 0" steps.
  const shard =
    ITEMS > BatchOptions.parse(options).shardSize
      ? (await temporal.workflow.getHandle(`${batchWorkflowId(id)}/shard-0`).fetchHistory()).events!
      : parent;
  return {
    parentStarted: at(parent.find((e) => e.workflowExecutionStartedEventAttributes)!),
    parentFirstTask: at(parent.find((e) => e.workflowTaskCompletedEventAttributes)!),
    shardFirstTask: at(shard.find((e) => e.workflowTaskStartedEventAttributes)!),
    shardFirstTaskDone: at(shard.find((e) => e.workflowTaskCompletedEventAttributes)!),
    attemptStarted: Date.parse(first.startedAt) - returned,
    stored: Date.parse(first.finishedAt) - returned,
    client: clientMs,
  };
}

const STEPS: [keyof Path, string][] = [
  ['parentStarted', 'batch workflow started'],
  ['parentFirstTask', "batch's first workflow task done (shard 0 started, or the batch's items)"],
  ['shardFirstTask', "shard 0's first workflow task on the worker (unsharded: the batch's)"],
  ['shardFirstTaskDone', 'that task done (remote: items scheduled; local: after its first items ran)'],
  ['attemptStarted', 'first item attempt started'],
  ['stored', 'its result stored'],
  ['client', 'client read its SSE event'],
];

const body = itemsOf('digits', ITEMS)
  .map((i) => JSON.stringify({ inputs: i }))
  .join('\n');
const rows: { mode: string; options: Partial<BatchOptions>; steps: Record<keyof Path, Stat> }[] = [];
for (const mode of MODES) {
  const stack = await startBatchlineStack();
  const connection = await connectTemporal(stack.config.TEMPORAL_ADDRESS);
  const store = new SqliteItemStore(itemStoreFile(stack.config));
  try {
    const temporal = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
    await runBatchline(stack, 'digits', itemsOf('digits', 100), mode.options, 'warm-up');
    const paths: Path[] = [];
    for (let r = 0; r < RUNS; r++) paths.push(await firstResult(stack, temporal, store, body, mode.options));
    const steps = Object.fromEntries(STEPS.map(([k]) => [k, stat(paths.map((p) => p[k]))])) as Record<keyof Path, Stat>;
    rows.push({ mode: mode.name, options: mode.options, steps });
    console.error(`${mode.name}: first result ${fmt(steps.client)} ms`);
  } finally {
    await store.close();
    await connection.close();
    await stack.stop();
  }
}
const file = writeResults('first-result', { items: ITEMS, runs: RUNS, machine: machine(), rows });
updateBenchmarksMd(
  'first-result',
  [
    '## Time to first result on a warm stack, hop by hop (`node --import tsx bench/first-result.ts`)',
    '',
    `${ITEMS.toLocaleString('en-US')} digits items per batch, ${RUNS} batches per mode after a 100-item warm-up, each cancelled after its first result;`,
    "milliseconds after submission returned, median (min–max), from Temporal's event times, the item store and the",
    `client's clock (one machine). Raw figures: [${file}](${file}).`,
    '',
    `| step | ${rows.map((r) => r.mode).join(' | ')} |`,
    `|---|${rows.map(() => '---').join('|')}|`,
    ...STEPS.map(([k, label]) => `| ${label} | ${rows.map((r) => fmt(r.steps[k])).join(' | ')} |`),
  ].join('\n'),
);
console.error(`wrote ${file} and BENCHMARKS.md`);
