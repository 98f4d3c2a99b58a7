// bench/cli-submit: `batchline submit` of a large NDJSON file against the same upload with curl (issue 21: the CLI
// within 1.5x of curl). Both post the same file to the same stack, alternating, each until its 202; the CLI's peak
// RSS shows that it streams the file. Each created batch is cancelled once its upload returns and has ended before
// the next upload starts, so the batch worker (nice 19 under SCHED_IDLE besides) takes no CPU from an upload.
//
//   node --import tsx bench/cli-submit.ts [--lines N] [--runs N]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commandLine, intArg, parseBenchArgs } from './lib/args.js';
import { machine, ratio, REPO_ROOT, stat, updateBenchmarksMd, type Stat } from './lib/report.js';
import { BATCH_WORKER_PRIORITY, startBatchlineStack, type BatchlineStack } from './systems/batchline.js';

const USAGE =
  'usage: node --import tsx bench/cli-submit.ts [--lines N] [--runs N]  (runs per tool, the first a warm-up)';
const { values } = parseBenchArgs(USAGE, {
  options: {
    lines: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '4' },
  },
});
const lines = intArg(USAGE, 'lines', values.lines);
const runs = intArg(USAGE, 'runs', values.runs, 2);
const TIME = '/usr/bin/time';
if (!fs.existsSync(TIME)) throw new Error(`${TIME} is needed for the peak RSS of each upload`);

/** The digits model's held-out rows cycled to `n` lines, built once under data/bench/. */
async function ndjsonFile(n: number): Promise<string> {
  const file = path.join(REPO_ROOT, 'data', 'bench', `digits-${n}.ndjson`);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const rows = fs
    .readFileSync(path.join(REPO_ROOT, 'models', 'digits', 'testdata', 'heldout.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.stringify({ inputs: (JSON.parse(l) as { inputs: unknown }).inputs }));
  const tmp = `${file}.tmp`;
  const out = fs.createWriteStream(tmp);
  for (let i = 0; i < n; i++) {
    if (!out.write(`${rows[i % rows.length]}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  fs.renameSync(tmp, file); // a run cut off while writing leaves no short file behind to be taken as the cache
  return file;
}

interface Upload {
  seconds: number;
  peakRssMiB: number;
  id: string;
}

/** Runs `argv` under /usr/bin/time until it exits; its stdout must hold the 202 answer (`{ id, ... }`). */
async function timedUpload(argv: string[], env: NodeJS.ProcessEnv): Promise<Upload> {
  const timeFile = path.join(os.tmpdir(), `cli-submit-time-${process.pid}`);
  const t0 = performance.now();
  const child = spawn(TIME, ['-f', '%M', '-o', timeFile, ...argv], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`${argv.join(' ')} exited with ${code}: ${stdout}`);
  const body = JSON.parse(stdout.trim().split('\n').at(-1)!) as { id?: string; status?: string };
  if (!body.id || body.status !== 'running') throw new Error(`not a 202 answer: ${stdout}`);
  const peakRssMiB = Number(fs.readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)) / 1024; // %M is in KiB
  fs.rmSync(timeFile, { force: true });
  return { seconds, peakRssMiB, id: body.id };
}

/** Cancels the batch and waits for it to end, so its winding down overlaps no upload; the seconds that took. */
async function cancelAndSettle(stack: BatchlineStack, id: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${stack.apiUrl}/v1/batches/${id}/cancel`, { method: 'POST' });
  if (!res.ok) throw new Error(`cancel ${id}: ${res.status} ${await res.text()}`);
  const deadline = Date.now() + 300_000;
  for (;;) {
    const batch = (await (await fetch(`${stack.apiUrl}/v1/batches/${id}`)).json()) as { status: string };
    if (batch.status !== 'running') return (performance.now() - t0) / 1000;
    if (Date.now() > deadline) throw new Error(`batch ${id} still running 300 s after its cancel`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const file = await ndjsonFile(lines);
const fileMiB = fs.statSync(file).size / 2 ** 20;
console.error(`${path.relative(REPO_ROOT, file)}: ${lines.toLocaleString('en-US')} lines, ${fileMiB.toFixed(1)} MiB`);
// Defaults (src/config.ts): MAX_BATCH_ITEMS 100,000 and MAX_BODY_BYTES 64 MiB; raised to fit the file.
const limits = {
  MAX_BATCH_ITEMS: String(Math.max(lines, 100_000)),
  MAX_BODY_BYTES: String(Math.max(64, Math.ceil((fileMiB * 1.25) / 64) * 64) * 2 ** 20),
};
const stack = await startBatchlineStack(limits);
const rel = path.relative(REPO_ROOT, file);
const tools = {
  curl: [
    'curl',
    '-sS',
    '--fail-with-body',
    '-X',
    'POST',
    `${stack.apiUrl}/v1/batches?model=digits`,
    '-H',
    'content-type: application/x-ndjson',
    '--data-binary',
    `@${rel}`,
  ],
  cli: [process.execPath, path.join('bin', 'batchline.mjs'), 'submit', rel, '--model', 'digits', '--json'],
} as const;
type Tool = keyof typeof tools;
const env = { ...process.env, BATCHLINE_URL: stack.apiUrl };
const measured: Record<Tool, Upload[]> = { curl: [], cli: [] };
const warmUp: Partial<Record<Tool, Upload>> = {};
const cancelSeconds: number[] = [];
try {
  process.chdir(REPO_ROOT);
  for (let round = 0; round < runs; round++) {
    // Which tool goes first alternates, so neither always follows the other's cancel.
    const order: Tool[] = round % 2 === 0 ? ['curl', 'cli'] : ['cli', 'curl'];
    for (const tool of order) {
      const upload = await timedUpload([...tools[tool]], env);
      const settled = await cancelAndSettle(stack, upload.id);
      cancelSeconds.push(settled);
      if (round === 0) warmUp[tool] = upload;
      else measured[tool].push(upload);
      console.error(
        `round ${round}${round === 0 ? ' (warm-up)' : ''} ${tool}: ${upload.seconds.toFixed(2)} s, peak RSS ${upload.peakRssMiB.toFixed(0)} MiB; cancelled and ended in ${settled.toFixed(1)} s`,
      );
    }
  }
} finally {
  await stack.stop();
}

const seconds = { curl: stat(measured.curl.map((u) => u.seconds)), cli: stat(measured.cli.map((u) => u.seconds)) };
const rss = { curl: stat(measured.curl.map((u) => u.peakRssMiB)), cli: stat(measured.cli.map((u) => u.peakRssMiB)) };
const perRound = stat(measured.cli.map((u, i) => u.seconds / measured.curl[i]!.seconds));
const f2 = (s: Stat) => `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
const f0 = (s: Stat) => `${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;
const list = (us: Upload[]) => us.map((u) => u.seconds.toFixed(2)).join(', ');
const m = machine();
const result = { lines, fileMiB, limits, warmUp, measured, cancelSeconds, perRoundRatio: perRound, machine: m };
console.log(JSON.stringify(result, null, 2));

const date = new Date().toISOString().slice(0, 10);
const mb = (fileMiB * 2 ** 20) / 1e6;
updateBenchmarksMd(
  'cli-submit',
  [
    `## CLI submit of a ${lines >= 1e6 ? `${lines / 1e6}M` : lines.toLocaleString('en-US')}-line file vs curl (issue 21)`,
    '',
    `\`${commandLine('bench/cli-submit.ts')}\`, ${date}, ${m.cpus} cores (${m.cpuModel}), ${m.memGiB} GiB, Node ${m.node}.`,
    `${lines.toLocaleString('en-US')} digits items (\`models/digits/testdata/heldout.jsonl\` cycled), one`,
    `\`{"inputs":{"input":[64 numbers]}}\` per line: ${mb.toFixed(0)} MB (${fileMiB.toFixed(0)} MiB). Both tools post the`,
    `same file to \`POST /v1/batches?model=digits\` of one stack (\`batchline dev\`'s layout: API, batch worker at`,
    `${BATCH_WORKER_PRIORITY}, interactive worker) and are timed from spawn to exit, that is until the 202 answer;`,
    `\`curl -sS -X POST … -H 'content-type: application/x-ndjson' --data-binary @FILE\` against`,
    `\`node bin/batchline.mjs submit FILE --model digits --json\`. ${runs} rounds, the tool going first alternating;`,
    `round 0 is a warm-up, reported apart. After each upload the batch is cancelled and the next upload waits until it`,
    `has ended, so no inference runs during an upload. Peak RSS from \`/usr/bin/time\`.`,
    `${lines > 100_000 || fileMiB > 64 ? 'The defaults (MAX_BATCH_ITEMS 100,000, MAX_BODY_BYTES 64 MiB) refuse this file; the' : 'The'}`,
    `bench sets MAX_BATCH_ITEMS ${Number(limits.MAX_BATCH_ITEMS).toLocaleString('en-US')} and MAX_BODY_BYTES ${Number(limits.MAX_BODY_BYTES) / 2 ** 20} MiB.`,
    '',
    '| tool | warm-up s | runs s | median s (min–max) | peak RSS MiB, median (min–max) |',
    '|---|---|---|---|---|',
    `| curl | ${warmUp.curl!.seconds.toFixed(2)} | ${list(measured.curl)} | ${f2(seconds.curl)} | ${f0(rss.curl)} |`,
    `| \`batchline submit\` | ${warmUp.cli!.seconds.toFixed(2)} | ${list(measured.cli)} | ${f2(seconds.cli)} | ${f0(rss.cli)} |`,
    '',
    `CLI / curl, per round: ${perRound.runs.map((r) => ratio(r)).join(', ')}; median ${ratio(perRound.median)}`,
    `(goal ≤ 1.5: ${perRound.median <= 1.5 ? 'met' : '**missed**'}). Ratio of the medians: ${ratio(seconds.cli.median / seconds.curl.median)}.`,
    `A cancelled batch ended ${f2(stat(cancelSeconds))} s after its cancel.`,
  ].join('\n'),
);
