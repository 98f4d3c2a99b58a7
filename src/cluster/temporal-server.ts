// A real Temporal server on PostgreSQL, as `batchline cluster` runs it and docker-compose.yml describes it: the
// server's configuration is one template (deploy/temporal/batchline.yaml) filled from the environment built here;
// its databases are created and migrated by the server's own schema tool; the dynamic config is
// CLUSTER_DYNAMIC_CONFIG. Binaries come from scripts/temporal-server.mjs (built once per machine).
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { BATCHLINE_DYNAMIC_CONFIG, type DynamicConfig } from '../dynamic-config.js';
import { isTemporalReachable, startServerProcess, type ServerProcess } from '../server-process.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The databases the Temporal server keeps on PostgreSQL (its state, and visibility: list queries, search attributes). */
export const TEMPORAL_DATABASES = { temporal: 'temporal', visibility: 'temporal_visibility' } as const;

/** History shards of a new cluster. Fixed once its database holds data (docs/cluster.md, sizing). */
export const DEFAULT_HISTORY_SHARDS = 4;

/** The dynamic config of batchline's cluster server (see docs/cluster.md for each setting and why). */
export const CLUSTER_DYNAMIC_CONFIG: DynamicConfig = {
  ...BATCHLINE_DYNAMIC_CONFIG,
  // A batch (or shard) workflow lives on one history shard, and that shard's transfer queue loads new tasks (a
  // workflow task after an item completes, an activity task) at most 20 times a second by default: every step of
  // the workflow waits for the next load. More shards do not help one workflow. See docs/cluster.md.
  'history.transferProcessorMaxPollRPS': 1000,
};

/** Temporal's dynamic-config file format: each key holds a list of values with optional constraints. */
export function dynamicConfigYaml(config: DynamicConfig): string {
  const doc = Object.fromEntries(
    Object.entries(config)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => [key, [{ value }]]),
  );
  return `# Generated from CLUSTER_DYNAMIC_CONFIG (src/cluster/temporal-server.ts) by \`npm run compose\`.\n${stringify(doc)}`;
}

export interface PostgresEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface TemporalServerPorts {
  frontend: number;
  frontendHttp: number;
  history: number;
  matching: number;
  worker: number;
  /** Membership (ringpop) ports of frontend, history, matching and worker. */
  membership: [number, number, number, number];
  metrics: number;
}

/** The environment deploy/temporal/batchline.yaml reads. Secrets (the password) travel here, never in argv. */
export function temporalServerEnv(o: {
  postgres: PostgresEndpoint;
  ports?: TemporalServerPorts;
  bindIp?: string;
  broadcastAddress?: string;
  /** A number, or a Compose interpolation of one. */
  historyShards?: number | string;
  dynamicConfigFile: string;
  logLevel?: string;
}): Record<string, string> {
  const env: Record<string, string> = {
    TEMPORAL_PG_HOST: o.postgres.host,
    TEMPORAL_PG_PORT: String(o.postgres.port),
    TEMPORAL_PG_USER: o.postgres.user,
    TEMPORAL_PG_PASSWORD: o.postgres.password,
    TEMPORAL_DB: TEMPORAL_DATABASES.temporal,
    TEMPORAL_VISIBILITY_DB: TEMPORAL_DATABASES.visibility,
    TEMPORAL_HISTORY_SHARDS: String(o.historyShards ?? DEFAULT_HISTORY_SHARDS),
    TEMPORAL_DYNAMIC_CONFIG: o.dynamicConfigFile,
    TEMPORAL_LOG_LEVEL: o.logLevel ?? 'warn',
  };
  if (o.bindIp) env.TEMPORAL_BIND_IP = o.bindIp;
  if (o.broadcastAddress) env.TEMPORAL_BROADCAST_ADDRESS = o.broadcastAddress;
  if (o.ports) {
    Object.assign(env, {
      TEMPORAL_FRONTEND_PORT: String(o.ports.frontend),
      TEMPORAL_FRONTEND_HTTP_PORT: String(o.ports.frontendHttp),
      TEMPORAL_HISTORY_PORT: String(o.ports.history),
      TEMPORAL_MATCHING_PORT: String(o.ports.matching),
      TEMPORAL_WORKER_PORT: String(o.ports.worker),
      TEMPORAL_FRONTEND_MEMBERSHIP_PORT: String(o.ports.membership[0]),
      TEMPORAL_HISTORY_MEMBERSHIP_PORT: String(o.ports.membership[1]),
      TEMPORAL_MATCHING_MEMBERSHIP_PORT: String(o.ports.membership[2]),
      TEMPORAL_WORKER_MEMBERSHIP_PORT: String(o.ports.membership[3]),
      TEMPORAL_METRICS_PORT: String(o.ports.metrics),
    });
  }
  return env;
}

/** The server's command line, relative to a directory holding deploy/ (the repository, or /app in the image). */
export const TEMPORAL_SERVER_ARGS = [
  '--root',
  'deploy',
  '--config',
  'temporal',
  '--env',
  'batchline',
  '--allow-no-auth',
  'start',
];

/**
 * The schema tool's steps, in order, for both databases: create the database (a no-op when it exists), set up the
 * version table, apply every versioned migration the server ships (a no-op when current). Each step is an argv
 * after `temporal-sql-tool`; the connection comes from SQL_* variables (schemaToolEnv) so the password stays out
 * of argv. docker-compose.yml runs the same steps.
 */
export function schemaSteps(schemaDir: string): string[][] {
  return Object.entries(TEMPORAL_DATABASES).flatMap(([kind, database]) => [
    ['--db', database, 'create-database'],
    ['--db', database, 'setup-schema', '-v', '0.0'],
    [
      '--db',
      database,
      'update-schema',
      '-d',
      `${schemaDir}/${kind === 'temporal' ? 'temporal' : 'visibility'}/versioned`,
    ],
  ]);
}

/**
 * The environment the Go servers and tools start from: only what a process needs to run. Not batchline's own
 * (DATABASE_URL with its password, API_KEYS): each gets its settings explicitly.
 */
function baseEnv(): NodeJS.ProcessEnv {
  const { PATH, HOME, TZ, LANG } = process.env;
  return Object.fromEntries(Object.entries({ PATH, HOME, TZ, LANG }).filter(([, v]) => v !== undefined));
}

export function schemaToolEnv(postgres: PostgresEndpoint): Record<string, string> {
  return {
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: postgres.host,
    SQL_PORT: String(postgres.port),
    SQL_USER: postgres.user,
    SQL_PASSWORD: postgres.password,
  };
}

/** Runs schemaSteps with the schema tool: creates and migrates both databases (idempotent, under a second). */
export async function setUpTemporalSchema(
  sqlTool: string,
  schemaDir: string,
  postgres: PostgresEndpoint,
): Promise<void> {
  const env = { ...baseEnv(), ...schemaToolEnv(postgres) };
  for (const step of schemaSteps(schemaDir)) {
    try {
      await execFileAsync(sqlTool, step, { env, timeout: 120_000, maxBuffer: 16 << 20 });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n').filter((l) => /ERROR|FATAL|error/.test(l));
      throw new Error(`temporal-sql-tool ${step.join(' ')} failed: ${output.slice(-3).join('\n') || e.message}`);
    }
  }
}

export interface TemporalServerOptions {
  binary: string;
  /** The directory holding deploy/ (the repository root). */
  root: string;
  /** Where the dynamic config file is written. */
  stateDir: string;
  postgres: PostgresEndpoint;
  host: string;
  ports: TemporalServerPorts;
  historyShards?: number;
  dynamicConfig?: DynamicConfig;
  onLine?: (line: string) => void;
}

export interface TemporalServer extends ServerProcess {
  address: string;
}

/** Starts the Temporal server (all four services in one process) and resolves once its frontend answers. */
export async function startTemporalServer(o: TemporalServerOptions): Promise<TemporalServer> {
  fs.mkdirSync(o.stateDir, { recursive: true });
  const dynamicConfigFile = path.join(o.stateDir, 'dynamic-config.yaml');
  fs.writeFileSync(dynamicConfigFile, dynamicConfigYaml({ ...CLUSTER_DYNAMIC_CONFIG, ...o.dynamicConfig }));
  const address = `${o.host}:${o.ports.frontend}`;
  const env = temporalServerEnv({
    postgres: o.postgres,
    ports: o.ports,
    bindIp: o.host,
    broadcastAddress: o.host,
    historyShards: o.historyShards,
    dynamicConfigFile,
  });
  const server = await startServerProcess({
    name: 'the Temporal server',
    command: o.binary,
    args: TEMPORAL_SERVER_ARGS,
    cwd: o.root,
    env: { ...baseEnv(), ...env },
    onLine: o.onLine,
    ready: () => isTemporalReachable(address, 1000),
  });
  return { address, ...server };
}

/** Starts the Temporal Web UI server (deploy/temporal-ui/batchline.yaml) for the frontend at `temporalAddress`. */
export async function startTemporalUi(o: {
  binary: string;
  root: string;
  temporalAddress: string;
  namespace: string;
  host: string;
  port: number;
  onLine?: (line: string) => void;
}): Promise<ServerProcess & { url: string }> {
  const url = `http://${o.host}:${o.port}`;
  const server = await startServerProcess({
    name: 'the Temporal Web UI',
    command: o.binary,
    args: ['--root', 'deploy', '--config', 'temporal-ui', '--env', 'batchline', 'start'],
    cwd: o.root,
    env: {
      ...baseEnv(),
      TEMPORAL_ADDRESS: o.temporalAddress,
      TEMPORAL_NAMESPACE: o.namespace,
      TEMPORAL_UI_HOST: o.host,
      TEMPORAL_UI_PORT: String(o.port),
    },
    onLine: o.onLine,
    ready: async () => {
      try {
        return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
      } catch {
        return false;
      }
    },
  });
  return { url, ...server };
}
