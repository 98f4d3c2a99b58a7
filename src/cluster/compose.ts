// docker-compose.yml as data, built from what `batchline cluster` runs: the roles, their environment and CPU weights
// and the servers' weights (topology.ts), the Temporal server's command, environment and schema steps
// (temporal-server.ts). `npm run compose` (scripts/write-compose.ts) writes it; test/unit/compose.test.ts checks the
// file against this and the Compose Specification. Values in `${...}` are Compose interpolation, resolved by
// `docker compose` from the caller's environment, so no secret is written here.
import { ITEM_STORE_DATABASE, ROLES, roleEnv, SERVER_CPU_WEIGHTS, type ClusterShared, type Role } from './topology.js';
import {
  schemaSteps,
  schemaToolEnv,
  temporalServerEnv,
  TEMPORAL_SERVER_ARGS,
  DEFAULT_HISTORY_SHARDS,
  type PostgresEndpoint,
} from './temporal-server.js';

/** The pinned versions the images are built from (scripts/temporal-server.mjs, scripts/temporal-cli.mjs). */
export interface ComposeVersions {
  temporalServer: string;
  temporalUi: string;
  temporalCli: string;
}

type Condition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface ComposeService {
  image: string;
  build?: { context: string; target: string; args?: Record<string, string> };
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: Condition }>;
  healthcheck?: { test: string[]; interval: string; timeout: string; retries: number; start_period?: string };
  ports?: string[];
  volumes?: string[];
  restart?: 'unless-stopped';
  stop_grace_period?: string;
  /**
   * The container's CPU weight under contention (topology.ts). Every service sets it: under cgroup v2 a runtime
   * converts it to cpu.weight, and runc before 1.3.2 turns the default 1024 into 39 while a container without it
   * gets 100, so a service left out would outweigh the online path.
   */
  cpu_shares: number;
}

export interface ComposeDocument {
  name: string;
  services: Record<string, ComposeService>;
  volumes: Record<string, Record<string, never>>;
}

/** Where the batchline image keeps the repository's bin/, dist/, models/ (Dockerfile, WORKDIR). */
export const IMAGE_ROOT = '/app';
/** Where the temporal image keeps the server module's PostgreSQL schema (the official admin-tools image's path). */
export const COMPOSE_SCHEMA_DIR = '/etc/temporal/schema/postgresql/v12';
/** One PostgreSQL user for everything, as under `batchline cluster`; it creates Temporal's databases. */
export const COMPOSE_POSTGRES: PostgresEndpoint = {
  host: 'postgresql',
  port: 5432,
  user: 'batchline',
  password: '${POSTGRES_PASSWORD:-batchline}',
};

/** What every batchline container shares: the cluster's ClusterShared, with the compose services' names. */
export const COMPOSE_SHARED: ClusterShared = {
  TEMPORAL_ADDRESS: 'temporal:7233',
  TEMPORAL_NAMESPACE: 'default',
  DATABASE_URL: `postgres://${COMPOSE_POSTGRES.user}:${COMPOSE_POSTGRES.password}@${COMPOSE_POSTGRES.host}:${COMPOSE_POSTGRES.port}/${ITEM_STORE_DATABASE}`,
  MODEL_REPOSITORY: `${IMAGE_ROOT}/models`,
};

const API_PORT = 3000;

/**
 * What each container adds to roleEnv: the settings `batchline cluster` gives each process of its own (DATA_DIR;
 * a worker's metrics port; the API's address), and API_KEYS, which the API requires because it binds 0.0.0.0
 * (without keys it would serve loopback only). In a container these need not differ between replicas.
 */
export const CONTAINER_ENV: Record<Role, Record<string, string>> = {
  worker: { WORKER_METRICS_PORT: '9464', DATA_DIR: `${IMAGE_ROOT}/data` },
  interactive: { WORKER_METRICS_PORT: '9464', DATA_DIR: `${IMAGE_ROOT}/data` },
  api: {
    HOST: '0.0.0.0',
    PORT: String(API_PORT),
    API_KEYS:
      '${API_KEYS:?set API_KEYS to key=tenant pairs (keys of 16+ characters); the API serves 0.0.0.0 only with keys}',
    DATA_DIR: `${IMAGE_ROOT}/data`,
  },
};

/** The dynamic config inside the temporal image (deploy/temporal/dynamic-config.yaml, written by `npm run compose`). */
export const COMPOSE_DYNAMIC_CONFIG_FILE = `${IMAGE_ROOT}/deploy/temporal/dynamic-config.yaml`;

/**
 * The server needs an address the other members can reach for its membership ring: the container's own IP, known
 * only at run time. `$$` is a literal `$` to Compose; the server's arguments follow as "$@".
 */
export const TEMPORAL_START_SCRIPT =
  'ip=$$(hostname -i); export TEMPORAL_BROADCAST_ADDRESS="$${ip%% *}"; exec temporal-server "$$@"';

export function composeDocument(versions: ComposeVersions): ComposeDocument {
  const temporalImage = (): Pick<ComposeService, 'image' | 'build'> => ({
    image: `batchline-temporal:${versions.temporalServer}`,
    build: {
      context: '.',
      target: 'temporal',
      args: { TEMPORAL_SERVER_VERSION: versions.temporalServer, TEMPORAL_CLI_VERSION: versions.temporalCli },
    },
  });
  const batchlineImage = (): Pick<ComposeService, 'image' | 'build'> => ({
    image: 'batchline',
    build: { context: '.', target: 'batchline' },
  });
  const batchline = (role: Role): ComposeService => ({
    ...batchlineImage(),
    command: ['node', 'bin/batchline.mjs', ROLES[role].command],
    environment: { ...roleEnv(role, COMPOSE_SHARED), ...CONTAINER_ENV[role] },
    depends_on: {
      'temporal-setup': { condition: 'service_completed_successfully' },
      postgresql: { condition: 'service_healthy' },
    },
    restart: 'unless-stopped',
    cpu_shares: ROLES[role].cpuWeight,
  });
  const { user, password } = COMPOSE_POSTGRES;
  return {
    name: 'batchline',
    services: {
      postgresql: {
        image: 'postgres:16',
        environment: { POSTGRES_USER: user, POSTGRES_PASSWORD: password, POSTGRES_DB: ITEM_STORE_DATABASE },
        // Over TCP: while the image initialises the database its temporary server listens on the socket only.
        healthcheck: {
          test: ['CMD', 'pg_isready', '-h', '127.0.0.1', '-U', user, '-d', ITEM_STORE_DATABASE],
          interval: '2s',
          timeout: '5s',
          retries: 30,
        },
        volumes: ['pgdata:/var/lib/postgresql/data'],
        restart: 'unless-stopped',
        cpu_shares: SERVER_CPU_WEIGHTS.postgresql,
      },
      'temporal-schema': {
        ...temporalImage(),
        command: [
          'sh',
          '-ec',
          schemaSteps(COMPOSE_SCHEMA_DIR)
            .map((s) => ['temporal-sql-tool', ...s].join(' '))
            .join('\n'),
        ],
        environment: schemaToolEnv(COMPOSE_POSTGRES),
        depends_on: { postgresql: { condition: 'service_healthy' } },
        cpu_shares: SERVER_CPU_WEIGHTS['temporal-schema'],
      },
      temporal: {
        ...temporalImage(),
        command: ['sh', '-c', TEMPORAL_START_SCRIPT, 'temporal-server', ...TEMPORAL_SERVER_ARGS],
        environment: temporalServerEnv({
          postgres: COMPOSE_POSTGRES,
          bindIp: '0.0.0.0',
          // Fixed once the database holds data: set it before the first `up` (docs/cluster.md, sizing).
          historyShards: `\${TEMPORAL_HISTORY_SHARDS:-${DEFAULT_HISTORY_SHARDS}}`,
          dynamicConfigFile: COMPOSE_DYNAMIC_CONFIG_FILE,
        }),
        depends_on: {
          'temporal-schema': { condition: 'service_completed_successfully' },
          postgresql: { condition: 'service_healthy' },
        },
        healthcheck: {
          test: ['CMD', 'temporal', 'operator', 'cluster', 'health', '--address', '127.0.0.1:7233'],
          interval: '5s',
          timeout: '5s',
          retries: 24,
          start_period: '10s',
        },
        // Loopback only: the frontend runs without authorisation (--allow-no-auth); the API is the public door.
        ports: ['127.0.0.1:7233:7233'],
        restart: 'unless-stopped',
        cpu_shares: SERVER_CPU_WEIGHTS.temporal,
      },
      'temporal-setup': {
        ...batchlineImage(),
        command: ['node', 'bin/batchline.mjs', 'temporal-setup'],
        environment: {
          TEMPORAL_ADDRESS: COMPOSE_SHARED.TEMPORAL_ADDRESS,
          TEMPORAL_NAMESPACE: COMPOSE_SHARED.TEMPORAL_NAMESPACE,
        },
        depends_on: { temporal: { condition: 'service_healthy' } },
        cpu_shares: SERVER_CPU_WEIGHTS['temporal-setup'],
      },
      // The official image, set through its environment as deploy/temporal-ui/batchline.yaml sets the cluster's.
      'temporal-ui': {
        image: `temporalio/ui:${versions.temporalUi}`,
        environment: {
          TEMPORAL_ADDRESS: COMPOSE_SHARED.TEMPORAL_ADDRESS,
          TEMPORAL_DEFAULT_NAMESPACE: COMPOSE_SHARED.TEMPORAL_NAMESPACE,
          TEMPORAL_NOTIFY_ON_NEW_VERSION: 'false',
          TEMPORAL_HIDE_LOGS: 'true',
          TEMPORAL_CSRF_COOKIE_INSECURE: 'true',
        },
        depends_on: { temporal: { condition: 'service_healthy' } },
        ports: ['127.0.0.1:8233:8080'],
        restart: 'unless-stopped',
        cpu_shares: SERVER_CPU_WEIGHTS['temporal-ui'],
      },
      // A worker drains for up to its shutdownGraceTime (10 s) after SIGTERM; Compose's default 10 s would cut it.
      worker: { ...batchline('worker'), stop_grace_period: '30s' },
      interactive: { ...batchline('interactive'), stop_grace_period: '30s' },
      api: {
        ...batchline('api'),
        // The image has no curl; Node's fetch asks the liveness route.
        healthcheck: {
          test: [
            'CMD',
            'node',
            '-e',
            `fetch('http://127.0.0.1:${API_PORT}/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
          ],
          interval: '10s',
          timeout: '5s',
          retries: 3,
          start_period: '30s',
        },
        ports: [`${API_PORT}:${API_PORT}`],
      },
    },
    volumes: { pgdata: {} },
  };
}
