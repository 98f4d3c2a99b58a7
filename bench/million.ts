// bench/million: one batch of N digits items (default 1,000,000) through the real stack: the dev server, one
// worker process (this one), the item store. Measures submission time, wall time, items/s, the longest history
// of any execution, and the worker's peak RSS. Writes bench/results/million-<date>.json and a BENCHMARKS.md row.
//
//   node --import tsx bench/million.ts [--items N] [--items-per-activity K] [--shard-size S] [--shards P]
//     [--concurrency C]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { BatchClient, batchWorkflowId } from '../src/client/batch-client.js';
import { resolveTemporalCli } from '../src/cli/dev.js';
import { BatchOptions } from '../src/contracts/batch.js';
import { loadConfig } from '../src/config.js';
import { startDevServer } from '../src/dev-server.js';
import { createLogger, routeTemporalLogs } from '../src/logger.js';
import { itemStoreFile, SqliteItemStore } from '../src/stores/sqlite-item-store.js';
import { startWorker } from '../src/worker.js';
import { progressQuery } from '../workflows/messages.js';
import { freePort } from '../src/free-port.js';
import { intArg, parseBenchArgs } from './lib/args.js';
import { machine, REPO_ROOT, updateBenchmarksMd, writeResults } from './lib/report.js';
import { connectTemporal } from '../src/client/connection.js';

const USAGE =
  'usage: node --import tsx bench/million.ts [--items N] [--items-per-activity K] [--shard-size S] [--shards P] [--concurrency C]';
const { values } = parseBenchArgs(USAGE, {
  options: {
    items: { type: 'string', default: '1000000' },
    'items-per-activity': { type: 'string', default: '100' },
    'shard-size': { type: 'string', default: '5000' },
    shards: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '256' },
  },
});
const n = intArg(USAGE, 'items', values.items);
const options = BatchOptions.parse({
  itemsPerActivity: intArg(USAGE, 'items-per-activity', values['items-per-activity']),
  shardSize: intArg(USAGE, 'shard-size', values['shard-size']),
  maxConcurrentShards: intArg(USAGE, 'shards', values.shards),
  concurrency: intArg(USAGE, 'concurrency', values.concurrency),
});

const log = createLogger('warn', 'bench');
routeTemporalLogs(log);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-million-'));
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
  LOG_LEVEL: 'warn',
});
const worker = await startWorker(config, log);
const store = new SqliteItemStore(itemStoreFile(config));
const batches = BatchClient.create(
  { address: server.address, namespace: 'default', taskQueue: config.TASK_QUEUE },
  store,
);
const client = new Client({ connection: await connectTemporal(server.address) });

const rows = fs
  .readFileSync(path.join(REPO_ROOT, 'models', 'digits', 'testdata', 'heldout.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => (JSON.parse(l) as { inputs: Record<string, unknown> }).inputs);

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 1000);
try {
  const t0 = Date.now();
  const id = await batches.submit({
    model: 'digits',
    items: Array.from({ length: n }, (_, i) => ({ inputs: rows[i % rows.length]! })),
    options,
  });
  const submitSeconds = (Date.now() - t0) / 1000;
  console.error(`submitted ${n} items in ${submitSeconds.toFixed(1)} s`);
  const handle = client.workflow.getHandle(batchWorkflowId(id));
  const ticker = setInterval(() => {
    void handle.query(progressQuery).then(
      (p) => console.error(`${p.percent}% ${p.itemsPerSecond} items/s`),
      () => undefined,
    );
  }, 30_000);
  const summary = await handle.result();
  clearInterval(ticker);
  const wallSeconds = (Date.now() - t0) / 1000;
  let maxEvents = 0;
  let executions = 0;
  const wid = batchWorkflowId(id);
  for await (const wf of client.workflow.list({
    query: `WorkflowId = '${wid}' OR WorkflowId STARTS_WITH '${wid}/shard-'`,
  })) {
    executions++;
    maxEvents = Math.max(maxEvents, wf.historyLength);
  }
  const stored = await store.countResults(id);
  const result = {
    items: n,
    options,
    counts: summary.counts,
    stored,
    submitSeconds,
    wallSeconds,
    itemsPerSecond: n / wallSeconds,
    executions,
    maxEventsPerExecution: maxEvents,
    workerPeakRssMiB: Math.round(peakRss / 2 ** 20),
    note: 'worker, API client and store writer share this process: peak RSS covers all three',
    machine: machine(),
  };
  console.error(JSON.stringify(result, null, 2));
  const file = writeResults('million', result);
  updateBenchmarksMd(
    'million',
    [
      '## One batch of a million items (issue 4)',
      '',
      `\`node --import tsx bench/million.ts --items ${n} --items-per-activity ${options.itemsPerActivity} --shard-size ${options.shardSize} --shards ${options.maxConcurrentShards} --concurrency ${options.concurrency}\`, ${new Date().toISOString().slice(0, 10)}, one run. Raw data: [${path.basename(file)}](${file}).`,
      '',
      '| items | submit (store) | wall time | items/s | executions | max events per execution | worker peak RSS |',
      '|---|---|---|---|---|---|---|',
      `| ${n.toLocaleString('en-US')} | ${submitSeconds.toFixed(1)} s | ${wallSeconds.toFixed(0)} s | ${Math.round(n / wallSeconds).toLocaleString('en-US')} | ${executions} | ${maxEvents.toLocaleString('en-US')} | ${result.workerPeakRssMiB} MiB |`,
      '',
      `Every item stored once: ${stored.succeeded.toLocaleString('en-US')} succeeded, ${stored.failed} failed. The worker, the submitting client and the store writer run in one process here, so the RSS figure covers all three.`,
    ].join('\n'),
  );
} finally {
  clearInterval(sampler);
  await worker.shutdown();
  await batches.close();
  await client.connection.close();
  await store.close();
  await server.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
