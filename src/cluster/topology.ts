// The processes of a batchline cluster and what each is told: one source for `batchline cluster` (which runs them
// on one machine, each in a directory of its own, as separate hosts would be) and docker-compose.yml (written from
// this by `npm run compose`; test/unit/compose.test.ts checks the file matches).

/** The item store's database on the cluster's PostgreSQL (beside Temporal's own two). */
export const ITEM_STORE_DATABASE = 'batchline';

/** What every batchline process of a cluster shares: nothing local, only these two servers and the models. */
export interface ClusterShared {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  /** The item store on the cluster's PostgreSQL. */
  DATABASE_URL: string;
  MODEL_REPOSITORY: string;
}

/**
 * The CPU weight of a process at nice 0, and the default of a cgroup's `cpu.shares` and of Compose's `cpu_shares`:
 * one scale for processes and containers. Under contention the kernel divides CPU time in proportion to weight; a
 * process alone takes what it needs whatever its weight.
 */
export const DEFAULT_CPU_WEIGHT = 1024;

/**
 * The weight of the batch workers: the kernel's weight for nice 19, the lowest a normal process has (the weight
 * `batchline dev` gives its batch worker, which adds SCHED_IDLE). A batch takes every cycle the online path leaves
 * idle and yields the rest: on a core it shares with one busy process of the default weight, it gets 15 / 1039 of it.
 */
export const BATCH_CPU_WEIGHT = 15;

/**
 * The environment of every worker process batchline starts (`batchline dev`, a cluster's roles, docker-compose.yml):
 * - two glibc malloc arenas instead of up to eight per core. A worker's threads (inference, the item store's,
 *   Temporal core's) each took an arena of its own and kept memory they had freed (BENCHMARKS.md, "Two malloc arenas
 *   per worker"). glibc reads it as the process starts;
 * - a young generation of up to twice 32 MiB for V8 (Node's default is 16 MiB per semi-space): a chunk's items,
 *   results and rows live for a few milliseconds, and with the larger one the batch worker spent less time
 *   collecting garbage (BENCHMARKS.md, "A larger young generation for the workers"). V8 reads it as the process starts.
 * A worker started otherwise needs both in its environment; childEnv() joins NODE_OPTIONS with the inherited one.
 */
export const WORKER_PROCESS_ENV = { MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--max-semi-space-size=32' } as const;

/**
 * A child process's environment: `inherited` with each layer's settings over it, in order, except NODE_OPTIONS,
 * which is joined: the layers' options in order, then the inherited ones, so a later layer's option wins over an
 * earlier one's and options a person set themselves win over all (Node applies the last of a repeated option).
 */
export function childEnv(
  inherited: NodeJS.ProcessEnv,
  ...layers: Readonly<Record<string, string | undefined>>[]
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...inherited };
  for (const layer of layers) Object.assign(env, layer);
  const options = [...layers.map((l) => l.NODE_OPTIONS), inherited.NODE_OPTIONS].filter((o) => o?.trim());
  if (options.length > 0) env.NODE_OPTIONS = options.join(' ');
  else delete env.NODE_OPTIONS;
  return env;
}

/** The roles of batchline's own processes on a cluster: `batchline <command>` with the role's environment. */
export const ROLES = {
  /** Batch items; scale these out (`--workers N`, `docker compose up --scale worker=N`). */
  worker: { command: 'worker', env: { WORKER_QUEUES: 'batch', ...WORKER_PROCESS_ENV }, cpuWeight: BATCH_CPU_WEIGHT },
  /**
   * Online predictions, on a process of its own so they never wait on a batch's event loop or workflow thread.
   */
  interactive: {
    command: 'worker',
    env: { WORKER_QUEUES: 'interactive', ...WORKER_PROCESS_ENV },
    cpuWeight: DEFAULT_CPU_WEIGHT,
  },
  /** The HTTP API; any number behind a load balancer (`--apis M`). */
  api: { command: 'api', env: {}, cpuWeight: DEFAULT_CPU_WEIGHT },
} as const satisfies Record<string, { command: 'worker' | 'api'; env: Record<string, string>; cpuWeight: number }>;

export type Role = keyof typeof ROLES;

/**
 * The CPU weights of the servers and set-up steps a cluster runs besides batchline's roles, named as the compose
 * services are. PostgreSQL and the Temporal server carry every prediction as well as every batch item, and the kernel
 * cannot tell the two apart inside them (Temporal's task-queue priority does), so they keep the default weight: a
 * saturating batch worker never takes their CPU. The set-up steps run before anything else starts.
 */
export const SERVER_CPU_WEIGHTS = {
  postgresql: DEFAULT_CPU_WEIGHT,
  'temporal-schema': DEFAULT_CPU_WEIGHT,
  temporal: DEFAULT_CPU_WEIGHT,
  'temporal-setup': DEFAULT_CPU_WEIGHT,
  'temporal-ui': DEFAULT_CPU_WEIGHT,
} as const satisfies Record<string, number>;

/** The environment of one process of `role`: the shared servers, then the role's own settings. */
export function roleEnv(role: Role, shared: ClusterShared): Record<string, string> {
  return { ...shared, ...ROLES[role].env };
}

/** Linux's CFS weight of nice 0, 1, ..., 19 (kernel/sched/core.c, sched_prio_to_weight): each step about 1 / 1.25. */
export const NICE_WEIGHTS = [
  1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
] as const;

/**
 * The niceness (0-19) whose kernel weight is nearest `weight` (by ratio). Weights above the default map to 0: a
 * negative nice needs privileges batchline does not ask for.
 */
export function niceForWeight(weight: number): number {
  if (!(weight > 0)) throw new RangeError(`a CPU weight must be positive, not ${weight}`);
  let best = 0;
  for (let nice = 1; nice < NICE_WEIGHTS.length; nice++) {
    if (Math.abs(Math.log(weight / NICE_WEIGHTS[nice]!)) < Math.abs(Math.log(weight / NICE_WEIGHTS[best]!))) {
      best = nice;
    }
  }
  return best;
}
