import { once } from 'node:events';
import type { Request, Response } from 'express';

/** Tuning of long streams (SSE, NDJSON results): progress at most once per second, a keep-alive comment when quiet, and how far a client may lag. */
export interface StreamTuning {
  progressEveryMs: number;
  keepAliveMs: number;
  /**
   * Bytes still buffered from earlier writes past which the client is disconnected instead of written to. One
   * write may be larger (a page of 500 embedding events is about 4 MB): it is bounded by the caller's page size.
   */
  maxBufferedBytes: number;
  /** How long a client may keep the buffer full before it is disconnected. */
  drainTimeoutMs: number;
}

export const DEFAULT_STREAM_TUNING: StreamTuning = {
  progressEveryMs: 1000,
  keepAliveMs: 15_000,
  maxBufferedBytes: 1 << 20,
  drainTimeoutMs: 30_000,
};

/**
 * Writes a long response without unbounded buffering: waits for 'drain' after a write the socket could not take
 * and disconnects a client that stays behind (not draining within drainTimeoutMs, or still over maxBufferedBytes
 * from earlier writes). A reading client gets every write, however large.
 */
export class StreamWriter {
  private readonly abort = new AbortController();
  readonly signal = this.abort.signal;

  constructor(
    req: Request,
    private readonly res: Response,
    private readonly tuning: StreamTuning,
  ) {
    res.on('close', () => this.abort.abort());
    req.on('close', () => {
      if (!res.writableEnded) this.abort.abort();
    });
  }

  get closed(): boolean {
    return this.signal.aborted;
  }

  /** Resolves false when the client is gone or was disconnected for lagging. */
  async write(text: string): Promise<boolean> {
    if (this.closed) return false;
    if (text === '') return true;
    if (this.res.writableLength > this.tuning.maxBufferedBytes) return this.disconnect();
    if (this.res.write(text)) return true;
    const drained = await Promise.race([
      once(this.res, 'drain').then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => setTimeout(() => r(false), this.tuning.drainTimeoutMs).unref()),
    ]);
    return drained && !this.closed ? true : this.disconnect();
  }

  private disconnect(): false {
    this.abort.abort();
    this.res.destroy();
    return false;
  }
}
