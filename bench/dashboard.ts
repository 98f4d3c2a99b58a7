// bench/dashboard: the dashboard's batch page (/ui) of a large batch running at full speed, in headless Chromium.
// Starts `batchline dev`'s layout (bench/systems/batchline.ts: dev server, compiled API, batch and interactive
// workers; `npm run build` first), submits N digits items (default 1,000,000) as NDJSON with compare.ts's chunked
// options, and:
// - keeps one page open on the batch the whole run, recording its long main-thread tasks (PerformanceObserver
//   'longtask', over 50 ms) and how late a 100 ms timer in the page fires (the page's responsiveness);
// - every --every seconds, and once after the batch has ended, opens the batch page afresh in a second tab and
//   times navigation -> first full render (counts, item map and failures drawn), with the page's own requests'
//   durations (Resource Timing) to show where that time goes.
// Writes bench/results/dashboard-<date>.json and BENCHMARKS.md's dashboard block.
//
//   npm run build && node --import tsx bench/dashboard.ts [--items N] [--every S]
import { Readable } from 'node:stream';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer, { type Page } from 'puppeteer-core';
import { resolveChromium } from '../scripts/chromium.mjs';
import { commandLine, intArg, parseBenchArgs } from './lib/args.js';
import { machine, REPO_ROOT, updateBenchmarksMd, writeResults } from './lib/report.js';
import { CHUNKED_OPTIONS, startBatchlineStack } from './systems/batchline.js';

const USAGE = 'usage: npm run build && node --import tsx bench/dashboard.ts [--items N] [--every S]';
const { values } = parseBenchArgs(USAGE, {
  options: {
    items: { type: 'string', default: '1000000' },
    every: { type: 'string', default: '15' },
  },
});
const n = intArg(USAGE, 'items', values.items);
const everyMs = intArg(USAGE, 'every', values.every) * 1000;
const OPTIONS = { ...CHUNKED_OPTIONS, maxConcurrentShards: 4 };

const rows = fs
  .readFileSync(path.join(REPO_ROOT, 'models', 'digits', 'testdata', 'heldout.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.stringify({ inputs: (JSON.parse(l) as { inputs: unknown }).inputs }));

/** N NDJSON lines, made as they are read. */
function* ndjson(): Generator<Buffer> {
  for (let i = 0; i < n; i += 1000) {
    const lines = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) lines.push(rows[j % rows.length]);
    yield Buffer.from(`${lines.join('\n')}\n`);
  }
}

interface Render {
  /** Items finished when the page was opened (succeeded + failed, from the API just before). */
  doneAtOpen: number;
  status: string;
  renderMs: number;
  /** The page's requests until its first render: path (without the batch id) -> duration ms. */
  requests: Record<string, number>;
}

const stack = await startBatchlineStack({
  MAX_BATCH_ITEMS: String(Math.max(n, 100_000)),
  MAX_BODY_BYTES: String(1024 * 1024 * 1024),
});
const browser = await puppeteer.launch({
  executablePath: await resolveChromium(),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});

async function batchState(id: string): Promise<{ status: string; done: number }> {
  const b = (await (await fetch(`${stack.apiUrl}/v1/batches/${id}`)).json()) as {
    status: string;
    counts: { succeeded: number; failed: number };
  };
  return { status: b.status, done: b.counts.succeeded + b.counts.failed };
}

async function watchPage(): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  // As source text: a function would be serialized as compiled by tsx, whose helpers (__name) the page lacks.
  await page.evaluateOnNewDocument(`
    window.__longtasks = [];
    window.__lateness = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
    let due = performance.now() + 100;
    const tick = () => {
      const now = performance.now();
      window.__lateness.push(now - due);
      due = now + 100;
      setTimeout(tick, 100);
    };
    setTimeout(tick, 100);
  `);
  return page;
}

/** Opens the batch page in a fresh tab and times it to its first full render. */
async function timeRender(id: string): Promise<Render> {
  const { status, done } = await batchState(id);
  const page = await browser.newPage();
  try {
    await page.setViewport({ width: 1280, height: 1000 });
    const t0 = Date.now();
    await page.goto(`${stack.apiUrl}/ui#/batches/${id}`);
    await page.waitForSelector('#view-batch[data-ready="true"]', { timeout: 60_000 });
    const renderMs = Date.now() - t0;
    const entries = await page.evaluate(() =>
      performance.getEntriesByType('resource').map((e) => ({ name: e.name, duration: e.duration, start: e.startTime })),
    );
    const requests: Record<string, number> = {};
    for (const e of entries) {
      const p = new URL(e.name).pathname.replace(id, ':id') + new URL(e.name).search.replace(/=\d+/g, '=N');
      if (p.startsWith('/v1/')) requests[p] = Math.round(e.duration);
    }
    return { doneAtOpen: done, status, renderMs, requests };
  } finally {
    await page.close();
  }
}

const renders: Render[] = [];
let watch: {
  seconds: number;
  longTasks: number;
  longestTaskMs: number;
  longTaskMsTotal: number;
  timerSamples: number;
  timerLatenessP99Ms: number;
  timerLatenessMaxMs: number;
};
let batchSeconds = 0;
let submitSeconds = 0;
let endShownMs = 0;
try {
  const t0 = Date.now();
  const query = new URLSearchParams({
    model: 'digits',
    ...Object.fromEntries(Object.entries(OPTIONS).map(([k, v]) => [k, String(v)])),
  });
  const res = await fetch(`${stack.apiUrl}/v1/batches?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: Readable.toWeb(Readable.from(ndjson())) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  const created = (await res.json()) as { id?: string };
  if (res.status !== 202 || !created.id)
    throw new Error(`submission answered ${res.status}: ${JSON.stringify(created)}`);
  const id = created.id;
  submitSeconds = (Date.now() - t0) / 1000;
  console.error(`submitted ${n} items as batch ${id} in ${submitSeconds.toFixed(1)} s`);

  const page = await watchPage();
  const watchStart = Date.now();
  await page.goto(`${stack.apiUrl}/ui#/batches/${id}`);
  await page.waitForSelector('#view-batch[data-ready="true"]', { timeout: 60_000 });
  const readyAt = await page.evaluate(() => performance.now());
  for (;;) {
    const r = await timeRender(id);
    renders.push(r);
    console.error(`render at ${r.doneAtOpen} done (${r.status}): ${r.renderMs} ms ${JSON.stringify(r.requests)}`);
    if (r.status !== 'running') break;
    const next = Date.now() + everyMs;
    for (;;) {
      // the interval between samples, cut short when the batch ends (then one last sample of the ended batch)
      if ((await batchState(id)).status !== 'running' || Date.now() >= next) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  batchSeconds = (Date.now() - t0) / 1000 - submitSeconds;
  const seconds = (Date.now() - watchStart) / 1000;
  const { tasks, lateness } = await page.evaluate(() => ({
    tasks: (globalThis as any).__longtasks as { start: number; duration: number }[],
    lateness: (globalThis as any).__lateness as number[],
  }));
  const during = tasks.filter((t) => t.start >= readyAt);
  const sorted = [...lateness].sort((a, b) => a - b);
  watch = {
    seconds,
    longTasks: during.length,
    longestTaskMs: Math.round(Math.max(0, ...during.map((t) => t.duration))),
    longTaskMsTotal: Math.round(during.reduce((s, t) => s + t.duration, 0)),
    timerSamples: lateness.length,
    timerLatenessP99Ms: Number((sorted[Math.floor(sorted.length * 0.99)] ?? NaN).toFixed(1)),
    timerLatenessMaxMs: Number((sorted.at(-1) ?? NaN).toFixed(1)),
  };
  // The open page learns of the end from its stream's next tick (about a second): how long after the API said so.
  const endSeen = Date.now();
  await page
    .waitForFunction(
      // source text, as the page script: the done and total figures of the counts are the same
      "(([done, total]) => done !== undefined && done === total)((document.querySelector('#stat-done')?.textContent ?? '').split(' / '))",
      { timeout: 30_000, polling: 50 },
    )
    .catch(() => undefined);
  endShownMs = Date.now() - endSeen;
  const finalText = await page.$eval('#stat-done', (el) => el.textContent);
  console.error(`watching page at the end: ${finalText} (${endShownMs} ms after the end); ${JSON.stringify(watch)}`);
} finally {
  await browser.close();
  await stack.stop();
}

const results = writeResults('dashboard', {
  machine: machine(),
  items: n,
  options: OPTIONS,
  submitSeconds,
  batchSeconds,
  renders,
  watch,
  endShownMs,
});
const paths = [...new Set(renders.flatMap((r) => Object.keys(r.requests)))].filter(
  (p) => p === '/v1/batches/:id' || p.startsWith('/v1/batches/:id/item-map'),
);
const table = [
  `| items done when opened | batch | first full render ms | ${paths.map((p) => `\`${p}\` ms`).join(' | ')} |`,
  `| --- | --- | --- | ${paths.map(() => '---').join(' | ')} |`,
  ...renders.map(
    (r) =>
      `| ${r.doneAtOpen.toLocaleString('en-US')} | ${r.status} | ${r.renderMs.toLocaleString('en-US')} | ${paths
        .map((p) => (r.requests[p] === undefined ? '–' : r.requests[p]!.toLocaleString('en-US')))
        .join(' | ')} |`,
  ),
].join('\n');
const m = machine();
updateBenchmarksMd(
  'dashboard',
  `## Dashboard: the batch page of a 1M-item batch running at full speed (issue 21)

\`${commandLine('bench/dashboard.ts')}\`, ${new Date().toISOString().slice(0, 10)}, ${m.cpus} cores (${m.cpuModel}),
Node ${m.node}, Debian's Chromium headless through puppeteer-core, against \`batchline dev\`'s layout (compiled API,
batch worker at low priority, interactive worker). One digits batch of ${n.toLocaleString('en-US')} items submitted as
NDJSON (${submitSeconds.toFixed(1)} s) with \`${JSON.stringify(OPTIONS)}\`, which then ran for ${batchSeconds.toFixed(0)} s.
Every ${everyMs / 1000} s, and once after it ended, the batch page was opened afresh in a new tab and timed from
navigation to its first full render (counts, item map and failures drawn); beside it, the page's own requests
(Resource Timing, request start to response end). Raw figures: [${results}](${results}).

${table}

One page stayed open on the batch for the whole run (${watch!.seconds.toFixed(0)} s): ${watch!.longTasks} main-thread
tasks over 50 ms (the longest ${watch!.longestTaskMs} ms, ${watch!.longTaskMsTotal} ms in all); a 100 ms timer in the
page (${watch!.timerSamples} firings) fired late by ${watch!.timerLatenessP99Ms} ms at p99 and ${watch!.timerLatenessMaxMs} ms at most;
it showed the end ${endShownMs} ms after the API first answered that the batch had ended.`,
);
console.log(`wrote ${results} and BENCHMARKS.md`);
