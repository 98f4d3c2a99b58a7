import type { Duration, KServeModelStat } from '../contracts/kserve-extensions.js';

// The statistics extension's numbers, as one API process can know them. Models run in worker processes, reached
// through Temporal, so the API cannot see a model's queue or its executions; it counts what it saw of each /v2
// infer request instead, per model version, from the moment its body starts to be read (docs/api.md says what
// each number means). Each API process counts its own requests, from its start.

/** Where one successful request's time went, in ns. */
export interface InferTimes {
  /** Reading, decoding and checking the request. */
  input: number;
  /** Starting its task and waiting for the result: Temporal, the worker's queue and the model run together. */
  infer: number;
  /** Building and sending the response. */
  output: number;
}

const zero = (): Duration => ({ count: 0, ns: 0 });

interface Counters {
  lastInference: number;
  rows: number;
  success: Duration;
  fail: Duration;
  input: Duration;
  infer: Duration;
  output: Duration;
}

const add = (d: Duration, ns: number) => {
  d.count += 1;
  d.ns += Math.round(ns);
};

/** Per model version counters of /v2 infer requests. */
export class KServeStatistics {
  private readonly counters = new Map<string, Counters>();

  private of(name: string, version: number): Counters {
    const key = `${name}@${version}`;
    let c = this.counters.get(key);
    if (!c) {
      c = { lastInference: 0, rows: 0, success: zero(), fail: zero(), input: zero(), infer: zero(), output: zero() };
      this.counters.set(key, c);
    }
    return c;
  }

  /** A request answered with its outputs: `rows` is its batch dimension. */
  succeeded(name: string, version: number, rows: number, times: InferTimes): void {
    const c = this.of(name, version);
    c.lastInference = Date.now();
    c.rows += rows;
    add(c.success, times.input + times.infer + times.output);
    add(c.input, times.input);
    add(c.infer, times.infer);
    add(c.output, times.output);
  }

  /** A request for a model version that was found, answered with an error after `ns`. */
  failed(name: string, version: number, ns: number): void {
    add(this.of(name, version).fail, ns);
  }

  /** One version's statistics in the extension's shape (zeros for a version no request reached). */
  stat(name: string, version: number): KServeModelStat {
    const c = this.counters.get(`${name}@${version}`);
    const copy = (d: Duration | undefined): Duration => ({ ...(d ?? zero()) });
    return {
      name,
      version: String(version),
      last_inference: c?.lastInference ?? 0,
      inference_count: c?.rows ?? 0,
      execution_count: c?.success.count ?? 0,
      inference_stats: {
        success: copy(c?.success),
        fail: copy(c?.fail),
        // Not measured apart: the worker's queue is inside compute_infer.
        queue: zero(),
        compute_input: copy(c?.input),
        compute_infer: copy(c?.infer),
        compute_output: copy(c?.output),
        cache_hit: zero(),
        cache_miss: zero(),
      },
      batch_stats: [],
    };
  }
}

const perApp = new WeakMap<object, KServeStatistics>();

/** The statistics of one app (keyed by its route dependencies, made once per createApp). */
export function statisticsOf(deps: object): KServeStatistics {
  let stats = perApp.get(deps);
  if (!stats) perApp.set(deps, (stats = new KServeStatistics()));
  return stats;
}
