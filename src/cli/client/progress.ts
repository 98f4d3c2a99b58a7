import cliProgress from 'cli-progress';
import type { BatchResource } from '../../contracts/batch.js';

/** What a progress display is told on each poll: the batch as `GET /v1/batches/:id` reads it. */
export type BatchState = Pick<
  BatchResource,
  'id' | 'status' | 'total' | 'counts' | 'paused' | 'itemsPerSecond' | 'eta'
>;

export interface ProgressDisplay {
  update(batch: BatchState): void;
  /** Leaves the last state on screen (the bar) or writes it as a last line (plain). */
  stop(): void;
}

export interface ProgressOptions {
  /** Where progress goes: stderr, so stdout keeps only what a script reads. */
  stream: NodeJS.WriteStream;
  /** A TTY gets a bar; anything else (a pipe, a CI log) plain lines. Default: `stream.isTTY`. */
  tty?: boolean;
  /** Plain lines: at most one per this many milliseconds, besides the first and the last. Default 5000. */
  plainEveryMs?: number;
  now?: () => number;
}

const finished = (b: BatchState) => b.counts.succeeded + b.counts.failed + b.counts.canceled;

/** Seconds until the API's ETA, as `1m05s`; `-` when it gives none. */
export function etaText(eta: string | undefined, now: number): string {
  if (!eta) return '-';
  const seconds = Math.max(0, Math.round((Date.parse(eta) - now) / 1000));
  if (!Number.isFinite(seconds)) return '-';
  return seconds >= 60 ? `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s` : `${seconds}s`;
}

const rateText = (b: BatchState) => (b.itemsPerSecond ?? 0).toFixed(1);

/** One plain line: `batch <id> running 6/12 (50%) 3.1 items/s ETA 2s failed 0`. */
export function plainLine(b: BatchState, now: number): string {
  const done = finished(b);
  const percent = b.total > 0 ? Math.floor((done / b.total) * 100) : 100;
  const state = b.status === 'running' && b.paused ? 'paused' : b.status;
  return (
    `batch ${b.id} ${state} ${done}/${b.total} (${percent}%) ${rateText(b)} items/s ETA ${etaText(b.eta, now)} ` +
    `failed ${b.counts.failed}`
  );
}

/** A progress bar on a TTY (cli-progress), plain periodic lines elsewhere. */
export function createProgress(options: ProgressOptions): ProgressDisplay {
  const now = options.now ?? Date.now;
  return (options.tty ?? Boolean(options.stream.isTTY)) ? barDisplay(options.stream, now) : plainDisplay(options, now);
}

function barDisplay(stream: NodeJS.WriteStream, now: () => number): ProgressDisplay {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{bar} {percentage}% | {value}/{total} items | {rate} items/s | ETA {etaText} | failed {failed} {state}',
      barsize: 30,
      etaBuffer: 1,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const payload = (b: BatchState) => ({
    rate: rateText(b),
    etaText: etaText(b.eta, now()),
    failed: b.counts.failed,
    state: b.status === 'running' ? (b.paused ? 'paused' : '') : b.status,
  });
  return {
    update(b) {
      if (!started) {
        bar.start(b.total, finished(b), payload(b));
        started = true;
      } else {
        bar.setTotal(b.total);
        bar.update(finished(b), payload(b));
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function plainDisplay(options: ProgressOptions, now: () => number): ProgressDisplay {
  const every = options.plainEveryMs ?? 5000;
  let last: BatchState | undefined;
  let lastWritten: string | undefined;
  let lastAt = -Infinity;
  const write = (b: BatchState) => {
    const line = plainLine(b, now());
    options.stream.write(`${line}\n`);
    lastWritten = line;
    lastAt = now();
  };
  return {
    update(b) {
      last = b;
      if (now() - lastAt >= every) write(b);
    },
    stop() {
      if (last && plainLine(last, now()) !== lastWritten) write(last);
    },
  };
}
