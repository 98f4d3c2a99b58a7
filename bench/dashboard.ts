// bench/dashboard: the dashboard's batch page (/ui) on a large batch running at full speed, in headless Chromium.
// Starts the dev server, one worker and the API (no API keys), submits N digits items (default 1,000,000) as NDJSON
// with itemsPerActivity 100, opens the batch page, and measures the time from navigation to its first full render
// (counts and item map drawn) and the longest main-thread task (PerformanceObserver 'longtask') over the watch
// window while the batch runs. Prints the figures; writes nothing else.
//
//   node --import tsx bench/dashboard.ts [--items N] [--watch-seconds S]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import puppeteer from 'puppeteer-core';
import { resolveChromium } from '../scripts/chromium.mjs';
import { resolveTemporalCli } from '../src/cli/dev.js';
import { loadConfig } from '../src/config.js';
import { startDevServer } from '../src/dev-server.js';
import { freePort } from '../src/free-port.js';
import { createLogger, routeTemporalLogs } from '../src/logger.js';
import { startServer } from '../src/server.js';
import { startWorker } from '../src/worker.js';
import { commandLine, intArg, parseBenchArgs } from './lib/args.js';
import { REPO_ROOT } from './lib/report.js';

const USAGE = 'usage: node --import tsx bench/dashboard.ts [--items N] [--watch-seconds S]';
const { values } = parseBenchArgs(USAGE, {
  options: {
    items: { type: 'string', default: '1000000' },
    'watch-seconds': { type: 'string', default: '30' },
  },
});
const n = intArg(USAGE, 'items', values.items);
const watchMs = intArg(USAGE, 'watch-seconds', values['watch-seconds']) * 1000;

const log = createLogger('warn', 'bench');
routeTemporalLogs(log);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-dashboard-'));
const server = await startDevServer({
  cliPath: await resolveTemporalCli(),
  dataDir,
  port: await freePort(),
  headless: true,
});
const config = loadConfig({
  TEMPORAL_ADDRESS: server.address,
  DATA_DIR: dataDir,
  MODEL_REPOSITORY: path.join(REPO_ROOT, 'models'),
  PORT: '0',
  MAX_BATCH_ITEMS: String(Math.max(n, 100_000)),
  MAX_BODY_BYTES: String(1024 * 1024 * 1024),
  LOG_LEVEL: 'warn',
});
const worker = await startWorker(config, log);
const api = await startServer(config, log);
const browser = await puppeteer.launch({
  executablePath: await resolveChromium(),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});

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

try {
  const t0 = Date.now();
  const res = await fetch(
    `${api.url}/v1/batches?model=digits&itemsPerActivity=100&shardSize=5000&maxConcurrentShards=4&concurrency=256`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: Readable.toWeb(Readable.from(ndjson())) as ReadableStream,
      duplex: 'half',
    } as RequestInit,
  );
  const created = (await res.json()) as { id?: string };
  if (res.status !== 202 || !created.id)
    throw new Error(`submission answered ${res.status}: ${JSON.stringify(created)}`);
  const id = created.id;
  console.log(`submitted ${n} items as batch ${id} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  await page.evaluateOnNewDocument(() => {
    const w = globalThis as any;
    w.__longtasks = [];
    new w.PerformanceObserver((list: any) => {
      for (const e of list.getEntries()) w.__longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  const before = Date.now();
  await page.goto(`${api.url}/ui#/batches/${id}`);
  await page.waitForSelector('#view-batch[data-ready="true"]', { timeout: 60_000 });
  const firstRender = Date.now() - before;
  const readyAt = await page.evaluate(() => performance.now());
  const doneAtStart = await page.$eval('#stat-done', (el) => el.textContent);

  await new Promise((resolve) => setTimeout(resolve, watchMs)); // the window being measured, not a wait for a state
  const tasks = await page.evaluate(() => (globalThis as any).__longtasks as { start: number; duration: number }[]);
  const during = tasks.filter((t) => t.start >= readyAt);
  const doneAtEnd = await page.$eval('#stat-done', (el) => el.textContent);
  const status = await page.$eval('#batch-status', (el) => el.textContent);
  const longest = Math.max(0, ...during.map((t) => t.duration));
  const longestBefore = Math.max(0, ...tasks.filter((t) => t.start < readyAt).map((t) => t.duration));

  console.log(`command: ${commandLine('bench/dashboard.ts')}`);
  console.log(`first full render of the batch page: ${firstRender} ms (navigation to counts and item map drawn)`);
  console.log(`longest main-thread task before that: ${longestBefore.toFixed(0)} ms`);
  console.log(
    `over ${watchMs / 1000} s while the batch ran (${status}; done ${doneAtStart} -> ${doneAtEnd}): ` +
      `${during.length} long tasks (>50 ms), the longest ${longest.toFixed(0)} ms, ` +
      `${during.reduce((s, t) => s + t.duration, 0).toFixed(0)} ms in all`,
  );
} finally {
  await browser.close();
  await api.close();
  await worker.shutdown();
  await server.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
