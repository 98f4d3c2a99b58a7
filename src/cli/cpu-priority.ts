import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { Config } from '../config.js';

/**
 * Lowers the worker process's CPU priority as configured: WORKER_NICE, then (Linux) SCHED_IDLE for every thread.
 * Call it before the SDK, the workflow threads and the inference threads start: Linux threads inherit their
 * creator's nice and scheduling policy. The threads Node has already started (V8's, libuv's) are switched too.
 *
 * Why SCHED_IDLE on top of nice 19: the kernel preempts a SCHED_IDLE thread at once for any waking thread of a
 * normal policy, while a nice-19 thread is only weighted down and a waking thread may still wait for it. A sync
 * prediction hops between the API, the Temporal server and the interactive worker, each hop a wake-up, so every hop
 * that waits behind the batch worker adds to its tail latency. A SCHED_IDLE batch worker still gets every cycle the
 * others leave idle, so a batch loses little throughput. The measurements are in BENCHMARKS.md (sync predict under
 * load).
 */
export function lowerCpuPriority(
  config: Pick<Config, 'WORKER_NICE' | 'WORKER_SCHED_IDLE'>,
  log: { warn: (o: object, m: string) => void },
): void {
  if (config.WORKER_NICE > 0) {
    os.setPriority(config.WORKER_NICE);
    // Linux keeps a nice per thread: the threads Node has already started (V8's, libuv's) are lowered one by one.
    if (process.platform === 'linux') {
      for (const tid of fs.readdirSync('/proc/self/task')) {
        try {
          os.setPriority(Number(tid), config.WORKER_NICE);
        } catch {
          // a thread that ended meanwhile
        }
      }
    }
  }
  if (!config.WORKER_SCHED_IDLE) return;
  if (process.platform !== 'linux') {
    log.warn({ platform: process.platform }, `WORKER_SCHED_IDLE is Linux-only; running at nice ${config.WORKER_NICE}`);
    return;
  }
  try {
    // util-linux's chrt: --all-tasks switches every thread of the process, not just the main one.
    execFileSync('chrt', ['--idle', '--all-tasks', '--pid', '0', String(process.pid)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (err) {
    const detail = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
    log.warn(
      { err: detail },
      `could not switch the worker to SCHED_IDLE (chrt, from util-linux); running at nice ${config.WORKER_NICE}`,
    );
  }
}
