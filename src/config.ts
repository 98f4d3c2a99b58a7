import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { MAX_API_KEY_LENGTH } from './contracts/limits.js';
import { DEFAULT_RUN_TIMEOUT_MS } from './runtime/model-config.js';
import { parseDatabaseUrl } from './stores/postgres.js';

const port = z.coerce.number().int().min(0).max(65535);
/** A true/false setting: `true`/`1` or `false`/`0`. */
const flag = (byDefault: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(byDefault ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

/**
 * Every setting batchline reads from the environment. This module is the only reader of process.env
 * (scripts/ aside); everything else receives a Config.
 */
export const ConfigSchema = z.object({
  /** HTTP port of the API. */
  PORT: port.default(3000),
  /** Interface the API binds to. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Temporal frontend (gRPC) address; `batchline dev` starts a dev server here unless one answers already. */
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^:\s]+:\d{1,5}$/, 'expected host:port')
    .default('127.0.0.1:7233'),
  /** Port of the Temporal Web UI that the dev server serves. */
  TEMPORAL_UI_PORT: port.default(8233),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** Task queue the worker polls for batch workflows and item activities. */
  TASK_QUEUE: z.string().min(1).default('batchline'),
  /** Directory for state: the dev server's database and, without DATABASE_URL, the item store's SQLite file. */
  DATA_DIR: z.string().min(1).default('./data'),
  /**
   * The item store (items, results, events, idempotency keys, rate limits) in PostgreSQL, shared by any number of
   * API and worker hosts: `postgres://user:password@host:5432/database`. Empty: SQLite in DATA_DIR (one machine).
   */
  DATABASE_URL: z
    .string()
    .default('')
    .superRefine((v, ctx) => {
      try {
        if (v !== '') parseDatabaseUrl(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^DATABASE_URL /, '') });
      }
    }),
  /** Connections in each process's item-store pool (with DATABASE_URL; plus one listening connection). */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  /**
   * Days a batch's items, results and events are kept after it ends; staged NDJSON uploads never committed go
   * after an hour. 0 keeps everything.
   */
  RETENTION_DAYS: z.coerce.number().min(0).default(7),
  /** Model repository root: models/<name>/config.json and models/<name>/<version>/model.onnx. */
  MODEL_REPOSITORY: z.string().min(1).default('./models'),
  /** Most items one batch may hold (a batch above options.shardSize runs as shards). */
  MAX_BATCH_ITEMS: z.coerce.number().int().positive().default(100_000),
  /**
   * Largest request body the API accepts, in bytes. An NDJSON body is streamed into the item store line by line;
   * a JSON body is parsed whole, so large batches should come as NDJSON.
   */
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /**
   * Largest file the OpenAI-compatible `POST /openai/v1/files` accepts, in bytes (default 200 MiB, OpenAI's limit
   * of a batch input file). Uploads are streamed into the item store's database in chunks.
   */
  MAX_FILE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(200 * 1024 * 1024),
  /**
   * API keys as `key=tenant` pairs separated by commas (a bare key belongs to tenant `default`). Every batch and
   * task belongs to its key's tenant. Empty: no authentication, and the API binds to loopback only.
   */
  API_KEYS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const keys = new Map<string, string>();
      for (const pair of v
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)) {
        const [key, tenant = 'default'] = pair.split('=').map((s) => s.trim());
        if (!key || key.length < 16 || key.length > MAX_API_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
          ctx.addIssue({
            code: 'custom',
            message: `each API key must be 16 to ${MAX_API_KEY_LENGTH} printable characters`,
          });
        } else if (!/^[\w.-]{1,64}$/.test(tenant)) {
          ctx.addIssue({ code: 'custom', message: `tenant '${tenant}' must be 1-64 of [A-Za-z0-9_.-]` });
        } else {
          keys.set(key, tenant);
        }
      }
      return keys as ReadonlyMap<string, string>;
    }),
  /** Requests that create work (batches, predictions) each API key may make per minute; 0 turns the limit off. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
  /** Task queue for online predictions, served by its own worker slots so a huge batch never starves them. */
  INTERACTIVE_TASK_QUEUE: z.string().min(1).default('batchline-interactive'),
  /** Activity slots each worker process reserves for online predictions. */
  INTERACTIVE_SLOTS: z.coerce.number().int().min(1).max(256).default(16),
  /** How long `POST /v1/predict` waits when the request names no timeoutMs (ms). */
  PREDICT_TIMEOUT_MS: z.coerce.number().int().min(1).default(30_000),
  /** Upper bound on a request's timeoutMs for `POST /v1/predict` (ms). */
  PREDICT_MAX_TIMEOUT_MS: z.coerce.number().int().min(1).default(120_000),
  /**
   * Admission control: a new sync prediction (sync predict, KServe infer) is refused with 503 and Retry-After when the
   * oldest online task it would wait behind in the interactive task queue has waited longer than this, or than half
   * the request's timeout (ms). See docs/operations.md, overload.
   */
  PREDICT_MAX_QUEUE_AGE_MS: z.coerce.number().int().min(1).default(2000),
  /** Admission control: sync predictions one API process waits on at once; more are refused with 503. */
  PREDICT_MAX_IN_FLIGHT: z.coerce.number().int().min(1).default(256),
  /** Admission control: async predictions are refused with 503 while the interactive task queue holds this many. */
  PREDICT_MAX_BACKLOG: z.coerce.number().int().min(1).default(10_000),
  /**
   * Addresses webhook deliveries may reach although they are private, loopback or link-local (comma-separated
   * CIDRs, e.g. `127.0.0.0/8,10.1.0.0/16`). Empty: every such address is refused after DNS resolution.
   */
  WEBHOOK_ALLOWED_CIDRS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const cidrs = v
        .split(',')
        .map((c) => c.trim())
        .filter(Boolean);
      for (const c of cidrs) {
        try {
          ipaddr.parseCIDR(c);
        } catch {
          ctx.addIssue({ code: 'custom', message: `'${c}' is not a CIDR (address/prefix)` });
        }
      }
      return cidrs as readonly string[];
    }),
  /**
   * Task queues this worker process polls: `all` (TASK_QUEUE and INTERACTIVE_TASK_QUEUE), `batch` (TASK_QUEUE:
   * batches, their items and webhooks) or `interactive` (INTERACTIVE_TASK_QUEUE: online predictions). `batchline
   * dev` runs one `batch` and one `interactive` worker, so online predictions never queue behind a batch's work.
   */
  WORKER_QUEUES: z.enum(['all', 'batch', 'interactive']).default('all'),
  /**
   * Scheduling niceness the worker process gives itself at start (0-19; higher yields the CPU to others). `batchline
   * dev` runs its batch worker at 19, so the API, the Temporal server and the interactive worker keep their CPU
   * while a batch saturates the machine.
   */
  WORKER_NICE: z.coerce.number().int().min(0).max(19).default(0),
  /**
   * Linux: every thread of the worker runs under SCHED_IDLE, so it gets a core only when no other process wants it
   * and any other process that wakes up takes the core at once (at nice 19 it is only weighted down).
   * `batchline dev` sets it for its batch worker. Elsewhere the worker says it cannot and keeps WORKER_NICE alone.
   */
  WORKER_SCHED_IDLE: flag(false),
  /**
   * `batchline cluster`: each batchline process runs at the niceness of its role's CPU weight (the weights
   * docker-compose.yml gives as cpu_shares, src/cluster/topology.ts: batch workers at nice 19, the rest at 0).
   * false: every process at the priority its environment gives (nice 0 by default), the layout with no OS priority.
   */
  CLUSTER_CPU_WEIGHTS: flag(true),
  /** Port of the worker's Prometheus endpoint (GET /metrics: its own and the Temporal SDK's metrics); 0 picks a free one. */
  WORKER_METRICS_PORT: port.default(9464),
  /** Worker threads running onnxruntime sessions in each worker process (2: best measured on 2 cores). */
  INFERENCE_THREADS: z.coerce.number().int().min(1).max(64).default(2),
  /**
   * Longest one model run may take on an inference thread (ms) unless the model's config.json sets runTimeoutMs.
   * Past it the thread is replaced, and every run it held fails retryably as InferenceTimeout. Keep it below
   * the batches' itemTimeoutMs, so a hung run is retried rather than the attempt timing out.
   */
  INFERENCE_RUN_TIMEOUT_MS: z.coerce.number().int().min(1).max(3_600_000).default(DEFAULT_RUN_TIMEOUT_MS),
  /** onnxruntime intra-op threads per session (per inference thread). */
  ORT_INTRA_OP_THREADS: z.coerce.number().int().min(1).max(64).default(1),
  /** Let onnxruntime's idle intra-op threads spin: lower latency, more CPU burnt. */
  ORT_ALLOW_SPINNING: flag(false),
  /** Coalesce concurrent items of one model into batches (Triton-style dynamic batching). */
  DYNAMIC_BATCHING: flag(true),
  /**
   * Stack frames the worker's workflow threads capture per Error, and so per promise: Temporal's TypeScript SDK
   * records a stack trace for every promise workflow code creates (for its stack-trace query), and at the V8
   * default of 10 frames that capture took a third of a per-item batch's worker CPU (BENCHMARKS.md, tuning). 0 (the
   * default) turns capture off: the Web UI's Stack Trace tab stays empty and errors raised in workflow code carry
   * no frames. Set 10 to see where a workflow waits while debugging. Activities keep full stack traces.
   */
  WORKFLOW_STACK_TRACE_LIMIT: z.coerce.number().int().min(0).max(100).default(0),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Readonly<z.infer<typeof ConfigSchema>>;

/** Variables whose values an error never repeats. */
const SECRET = new Set(['API_KEYS', 'DATABASE_URL']);

/** Thrown by loadConfig when a variable is malformed; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly issues: readonly string[]) {
    super(
      issues.length === 1
        ? `invalid configuration: ${issues[0]}`
        : `invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; paths come back absolute. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const known = Object.fromEntries(
    Object.keys(ConfigSchema.shape).flatMap((k) =>
      env[k] === undefined || env[k]!.trim() === '' ? [] : [[k, env[k]]],
    ),
  );
  const parsed = ConfigSchema.safeParse(known);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const name = String(i.path[0]);
        return SECRET.has(name)
          ? `${i.path.join('.')}: ${i.message}`
          : `${i.path.join('.')}=${JSON.stringify(known[name])}: ${i.message}`;
      }),
    );
  }
  return Object.freeze({
    ...parsed.data,
    DATA_DIR: path.resolve(parsed.data.DATA_DIR),
    MODEL_REPOSITORY: path.resolve(parsed.data.MODEL_REPOSITORY),
  });
}

/** The environment that loadConfig reads back as `config` (for child processes started with a given config). */
export function configToEnv(config: Config): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => {
      if (v instanceof Map) return [k, [...v].map(([key, tenant]) => `${key}=${tenant}`).join(',')];
      if (Array.isArray(v)) return [k, v.join(',')];
      return [k, String(v)];
    }),
  );
}
