// What one system of the side-by-side benchmark (raw, BullMQ, batchline per-item and chunked) reports for one run
// of the same items, and the summary every system is compared by.
import fs from 'node:fs';

export interface SystemRun {
  /** Which system ran: 'bullmq', 'batchline', ... */
  system: string;
  items: number;
  /** The whole submission: from its start until every item is durable and queued (ms). */
  submitMs: number;
  /** From the start of submission to the last result stored (ms). */
  wallMs: number;
  /**
   * From the start of submission to the first result a client can read (ms). Counted from the start, the one moment
   * every system shares: BullMQ's workers begin while its enqueue is still going, so a time from the end of the
   * submission can be negative there.
   */
  firstResultMs: number;
  /** Per item, in index order: from the start of its (last) attempt to its result stored (ms). */
  latencyMs: number[];
  /** Peak RSS (VmHWM) of the worker process(es), the largest of them (MiB). */
  workerPeakRssMb: number;
  /** Items whose recorded outcome is a failure. */
  failed: number;
  /** System-specific parts of the figures above (ms), e.g. BullMQ's store write and enqueue within submitMs. */
  detail?: Record<string, number>;
  /**
   * CPU seconds of the process trees the caller named (`cpuTrees`, e.g. the cluster's PostgreSQL), from the start
   * of submission until every outcome was stored: the work itself, not the bench's reading of the results after.
   */
  treeCpuSeconds?: Record<string, number>;
}

/** Process trees whose CPU a run measures over its own window (SystemRun.treeCpuSeconds), by name: root pid. */
export type CpuTrees = Record<string, number>;

/** A snapshot of each tree's CPU seconds (the start of a run's window). */
export function cpuOfTrees(trees: CpuTrees | undefined): Record<string, number> | undefined {
  if (!trees) return undefined;
  return Object.fromEntries(Object.entries(trees).map(([name, pid]) => [name, treeCpuSeconds(pid) ?? NaN]));
}

/** Each tree's CPU seconds since the snapshot `before`: SystemRun.treeCpuSeconds. */
export function cpuSince(
  before: Record<string, number> | undefined,
  trees: CpuTrees | undefined,
): Record<string, number> | undefined {
  const after = cpuOfTrees(trees);
  if (!before || !after) return undefined;
  return Object.fromEntries(Object.entries(after).map(([name, s]) => [name, s - before[name]!]));
}

export interface RunSummary {
  system: string;
  items: number;
  itemsPerSec: number;
  submitMs: number;
  wallMs: number;
  firstResultMs: number;
  p50Ms: number;
  p99Ms: number;
  workerPeakRssMb: number;
  failed: number;
}

/** The nearest-rank percentile (p in [0, 100]) of `values`; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(run: SystemRun): RunSummary {
  return {
    system: run.system,
    items: run.items,
    itemsPerSec: run.items / (run.wallMs / 1000),
    submitMs: run.submitMs,
    wallMs: run.wallMs,
    firstResultMs: run.firstResultMs,
    p50Ms: percentile(run.latencyMs, 50),
    p99Ms: percentile(run.latencyMs, 99),
    workerPeakRssMb: run.workerPeakRssMb,
    failed: run.failed,
  };
}

/** One line: `bullmq: 2,000 items, 1,234 items/s, submit 80 ms, first result 12 ms, p50 3 ms / p99 9 ms, ...`. */
export function formatRun(run: SystemRun): string {
  const s = summarize(run);
  const n = (v: number, digits = 0) => v.toLocaleString('en-US', { maximumFractionDigits: digits });
  return (
    `${s.system}: ${n(s.items)} items in ${n(s.wallMs / 1000, 2)} s, ${n(s.itemsPerSec)} items/s, submit ${n(s.submitMs)} ms, ` +
    `first result ${n(s.firstResultMs)} ms, latency p50 ${n(s.p50Ms, 1)} ms / p99 ${n(s.p99Ms, 1)} ms, ` +
    `worker peak RSS ${n(s.workerPeakRssMb)} MiB, ${s.failed} failed`
  );
}

/** Peak resident set size (VmHWM) of a live process, in MiB; undefined when it cannot be read (not Linux, gone). */
export function peakRssMb(pid: number): number | undefined {
  return procStatusMb(pid, 'VmHWM');
}

/** Resident set size now (VmRSS) of a live process, in MiB; undefined when it cannot be read. */
export function rssMb(pid: number): number | undefined {
  return procStatusMb(pid, 'VmRSS');
}

function procStatusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU time a live process and its threads have used so far (user + system, from /proc/<pid>/stat), in seconds;
 * undefined when it cannot be read. Sampled before and after a run, it says which process the time went to.
 */
export function cpuSeconds(pid: number): number | undefined {
  try {
    return statCpuSeconds(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The CPU seconds in a /proc stat line (a process's or a thread's): utime + stime. */
function statCpuSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // after "pid (comm) "
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the whole line)
  return ticks / 100; // USER_HZ is 100 on Linux
}

/**
 * CPU seconds of each thread of a process, by thread id, with the thread's name (Node's own threads and worker
 * threads are all called "node"; the main thread's id is the process's). Threads that ended are not listed.
 */
export function threadCpuSeconds(pid: number): Map<number, { name: string; seconds: number }> {
  const threads = new Map<number, { name: string; seconds: number }>();
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      threads.set(Number(tid), { name, seconds: statCpuSeconds(stat) });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return threads;
}

/**
 * CPU seconds of a process and its descendants: their own time, and the time of children they have already
 * reaped (PostgreSQL's postmaster and its backends, which come and go with connections).
 */
export function treeCpuSeconds(pid: number): number | undefined {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      (children.get(ppid) ?? children.set(ppid, []).get(ppid)!).push(Number(entry));
    } catch {
      // gone since the listing
    }
  }
  const own = (p: number): number => {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100; // utime stime cutime cstime
    } catch {
      return 0;
    }
  };
  if (!fs.existsSync(`/proc/${pid}`)) return undefined;
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    total += own(p);
    stack.push(...(children.get(p) ?? []));
  }
  return total;
}
