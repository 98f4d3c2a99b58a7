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

/** The roles of batchline's own processes on a cluster: `batchline <command>` with the role's environment. */
export const ROLES = {
  /** Batch items; scale these out (`--workers N`, `docker compose up --scale worker=N`). */
  worker: { command: 'worker', env: { WORKER_QUEUES: 'batch' } },
  /**
   * Online predictions, on a process of its own so they never wait on a batch's event loop or workflow thread.
   */
  interactive: { command: 'worker', env: { WORKER_QUEUES: 'interactive' } },
  /** The HTTP API; any number behind a load balancer (`--apis M`). */
  api: { command: 'api', env: {} },
} as const satisfies Record<string, { command: 'worker' | 'api'; env: Record<string, string> }>;

export type Role = keyof typeof ROLES;

/** The environment of one process of `role`: the shared servers, then the role's own settings. */
export function roleEnv(role: Role, shared: ClusterShared): Record<string, string> {
  return { ...shared, ...ROLES[role].env };
}
