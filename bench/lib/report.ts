// Shared by the benchmarks: repeated measurement with median/min/max, and writing results.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const REPO_ROOT = path.dirname(BENCH_ROOT);

export interface Stat {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function stat(runs: number[]): Stat {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs };
}

/** `12,345 (11,900–12,800)`: a median with its range. */
export function fmt(s: Stat, digits = 0): string {
  const f = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

/**
 * A ratio for a table: three significant digits below 100, so a small one never rounds to 0 (a system against raw
 * onnxruntime on a tiny model is a few ten-thousandths), whole numbers above; `n/a` when there is no ratio (a zero
 * or missing denominator).
 */
export function ratio(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  return v.toLocaleString('en-US', v >= 100 ? { maximumFractionDigits: 0 } : { maximumSignificantDigits: 3 });
}

/** Writes bench/results/<name>-<date>.json and returns its path relative to the repo. */
export function writeResults(name: string, data: unknown): string {
  const dir = path.join(BENCH_ROOT, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().slice(0, 10)}.json`);
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return path.relative(REPO_ROOT, file);
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->` in BENCHMARKS.md (appending if absent). */
export function updateBenchmarksMd(name: string, body: string): void {
  const file = path.join(REPO_ROOT, 'BENCHMARKS.md');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n';
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i !== -1 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(file, text);
  // In the project's format (tables aligned), so the file a run leaves passes `npm run lint` as written.
  execFileSync(
    process.execPath,
    [path.join(REPO_ROOT, 'node_modules', 'prettier', 'bin', 'prettier.cjs'), '--write', file],
    {
      stdio: 'ignore',
    },
  );
}

export function machine(): Record<string, unknown> {
  return {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverage: os.loadavg(),
  };
}
