// `batchline cluster`: a rehearsal of a multi-host deployment on one machine. PostgreSQL (given, or a local one),
// the Temporal server on it (schema migrated, namespace and search attributes registered), its Web UI, then
// N batch workers, an interactive worker and M APIs as separate processes, each in a directory of its own and
// sharing nothing local: only the database and the Temporal server, exactly as separate hosts would. Each batchline
// process runs at the niceness of its role's CPU weight (topology.ts), as docker-compose.yml gives the same weights
// as cpu_shares.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { connectTemporal } from '../client/connection.js';
import { ensureNamespace } from '../client/namespace.js';
import { freePort, freePortBetween } from '../free-port.js';
import type { DynamicConfig } from '../dynamic-config.js';
import { startLocalPostgres, type LocalPostgres } from './postgres.js';
import { stopChild, type ServerProcess } from '../server-process.js';
import {
  setUpTemporalSchema,
  startTemporalServer,
  startTemporalUi,
  type PostgresEndpoint,
  type TemporalServer,
} from './temporal-server.js';
import {
  childEnv,
  ITEM_STORE_DATABASE,
  niceForWeight,
  roleEnv,
  ROLES,
  type ClusterShared,
  type Role,
} from './topology.js';
import type { TemporalServerBinaries } from '../../scripts/temporal-server.mjs';

export interface ClusterOptions {
  /** The repository (holds deploy/ and models/). */
  root: string;
  /** All state: postgres/, temporal/, and one directory per batchline process. */
  dir: string;
  binaries: TemporalServerBinaries;
  /** `batchline` as a command line prefix, e.g. [node, bin/batchline.mjs]; the role's command is appended. */
  batchline: string[];
  workers: number;
  apis: number;
  /** An existing PostgreSQL for everything (its user creates the Temporal databases); else a local one in dir. */
  databaseUrl?: string;
  host?: string;
  temporalPort: number;
  /** The first API's port; API k listens on apiPort + k - 1. */
  apiPort: number;
  /** The Web UI's port; undefined: no UI. */
  uiPort?: number;
  /** The first worker's metrics port; each batchline worker takes the next (0: each a free port). */
  workerMetricsPort: number;
  namespace: string;
  modelRepository: string;
  historyShards?: number;
  dynamicConfig?: DynamicConfig;
  /**
   * Each batchline process runs at the niceness of its role's CPU weight (cpuPriorityEnv); default true. false: the
   * cluster sets no priority, and every process runs at the one its environment gives (nice 0 by default).
   */
  cpuWeights?: boolean;
  /** Environment every batchline process inherits (LOG_LEVEL, API_KEYS, test settings) under the cluster's own. */
  env?: NodeJS.ProcessEnv;
  onLine?: (source: string, line: string) => void;
  /** Called when a batchline process exits while the cluster is not stopping (a host that died). */
  onExit?: (proc: ClusterProcess, code: number | null, signal: NodeJS.Signals | null) => void;
  /** Called when the Temporal server or its UI exits on its own (not stopped or restarted by the cluster). */
  onServerExit?: (name: 'temporal' | 'ui', code: number | null) => void;
}

export interface ClusterProcess {
  /** worker-1, worker-2, interactive, api-1, ...; `batchline-<name>` is its PostgreSQL application_name. */
  name: string;
  role: Role;
  /** Its working directory and DATA_DIR: nothing in it is shared. */
  dir: string;
  child: ChildProcess;
  /** Starts it again with the same settings (after a kill). */
  restart(): void;
}

export interface Cluster {
  databaseUrl: string;
  postgres?: LocalPostgres;
  temporal: TemporalServer;
  ui?: ServerProcess & { url: string };
  processes: ClusterProcess[];
  apiUrls: string[];
  /** Stops the Temporal server and starts it again on the same ports and database. */
  restartTemporal(options?: { downMs?: number }): Promise<void>;
  /** Stops everything it started, batchline processes first. */
  stop(): Promise<void>;
}

function endpointOf(url: string): PostgresEndpoint {
  const u = new URL(url);
  return {
    host: u.hostname || 'localhost',
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  };
}

/**
 * How `batchline cluster` gives a process its role's CPU weight: the niceness of that weight, which a worker gives
 * itself at start (WORKER_NICE, as under `batchline dev`), before the SDK's, the workflows' and the inference threads
 * exist, so they inherit it. (Linux keeps a nice per thread: os.setPriority on a child's pid after spawn would lower
 * its main thread only.) No SCHED_IDLE: the rehearsal gives its processes what a compose file or an orchestrator
 * can give containers, a weight. Only workers lower themselves: the API and the servers keep nice 0, the default
 * weight, which is their weight in the role table (test/unit/compose.test.ts keeps it so).
 */
export function cpuPriorityEnv(role: Role): Record<string, string> {
  return ROLES[role].command === 'worker' ? { WORKER_NICE: String(niceForWeight(ROLES[role].cpuWeight)) } : {};
}

/**
 * PostgreSQL connections a local cluster may hold: the Temporal server (each of its four services keeps a pool of
 * up to TEMPORAL_PG_MAX_CONNS for its state, plus visibility's), and each batchline process (its item-store pool,
 * its listening connection, and an API's pool for idempotency keys and the rate limit), and room for other
 * clients (psql, a bench peer on the same server).
 */
export function connectionBudget(workers: number, apis: number): number {
  const temporal = 4 * (20 + 5);
  const perProcess = 16;
  return temporal + perProcess * (workers + apis + 1) + 200;
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const host = o.host ?? '127.0.0.1';
  const onLine = o.onLine ?? (() => undefined);
  let stopping = false;
  const cleanups: (() => Promise<void>)[] = [];
  // If this process exits without stopping the cluster (an uncaught error, process.exit), its servers must not
  // outlive it: batchline's own processes follow their supervisor (IPC), the servers are killed here.
  const killNow: (() => void)[] = [];
  const onProcessExit = () => killNow.forEach((kill) => kill());
  process.on('exit', onProcessExit);
  const stopAll = async () => {
    stopping = true;
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    process.removeListener('exit', onProcessExit);
  };
  try {
    fs.mkdirSync(o.dir, { recursive: true });
    // 1. PostgreSQL
    let postgres: LocalPostgres | undefined;
    let databaseUrl = o.databaseUrl;
    if (!databaseUrl) {
      const local = await startLocalPostgres({
        dataDir: path.join(o.dir, 'postgres', 'data'),
        port: await freePort(),
        maxConnections: connectionBudget(o.workers, o.apis),
        // Its LOG lines (checkpoints, connections) are noise next to the others; its problems are not.
        onLine: (line) => /\b(ERROR|FATAL|PANIC|WARNING):/.test(line) && onLine('postgres', line),
      });
      postgres = local;
      cleanups.push(() => local.stop());
      killNow.push(() => local.killNow());
      await local.ensureDatabase(ITEM_STORE_DATABASE);
      databaseUrl = local.url(ITEM_STORE_DATABASE);
    }
    const pgEndpoint = endpointOf(databaseUrl);

    // 2. the Temporal server on it
    await setUpTemporalSchema(o.binaries.sqlTool, o.binaries.schemaDir, pgEndpoint);
    // Below 32768: the server stores its ports in a smallint column. None of the ports the caller chose.
    const chosen = new Set([o.temporalPort, o.uiPort, o.workerMetricsPort, o.apiPort]);
    for (let k = 0; k <= o.workers + o.apis; k++) chosen.add(o.apiPort + k).add(o.workerMetricsPort + k);
    const ports = new Set<number>();
    while (ports.size < 9) {
      const port = await freePortBetween(20_000, 32_767);
      if (!chosen.has(port)) ports.add(port);
    }
    const [frontendHttp, history, matching, worker, m1, m2, m3, m4, metrics] = [...ports];
    const temporalOptions = {
      binary: o.binaries.server,
      root: o.root,
      stateDir: path.join(o.dir, 'temporal'),
      postgres: pgEndpoint,
      host,
      ports: {
        frontend: o.temporalPort,
        frontendHttp: frontendHttp!,
        history: history!,
        matching: matching!,
        worker: worker!,
        membership: [m1!, m2!, m3!, m4!] as [number, number, number, number],
        metrics: metrics!,
      },
      historyShards: o.historyShards,
      dynamicConfig: o.dynamicConfig,
      onLine: (line: string) => stopping || onLine('temporal', line),
    };
    let restarting = false;
    const watch = (server: TemporalServer) => {
      killNow.push(() => server.child.kill('SIGKILL'));
      void server.exited.then((code) => {
        if (!stopping && !restarting && server === temporal) o.onServerExit?.('temporal', code);
      });
      return server;
    };
    let temporal = watch(await startTemporalServer(temporalOptions));
    cleanups.push(() => temporal.stop());
    const connection = await connectTemporal(temporal.address);
    try {
      await ensureNamespace(connection, o.namespace);
    } finally {
      await connection.close();
    }

    // 3. its Web UI
    let ui: (ServerProcess & { url: string }) | undefined;
    if (o.uiPort !== undefined && o.binaries.uiServer) {
      const started = await startTemporalUi({
        binary: o.binaries.uiServer,
        root: o.root,
        temporalAddress: temporal.address,
        namespace: o.namespace,
        host,
        port: o.uiPort,
        onLine: (line) => stopping || onLine('ui', line),
      });
      ui = started;
      cleanups.push(() => started.stop());
      killNow.push(() => started.child.kill('SIGKILL'));
      void started.exited.then((code) => stopping || o.onServerExit?.('ui', code));
    }

    // 4. batchline's processes
    const shared: ClusterShared = {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: o.namespace,
      DATABASE_URL: databaseUrl,
      MODEL_REPOSITORY: o.modelRepository,
    };
    const processes: ClusterProcess[] = [];
    const plan: { name: string; role: Role; env: Record<string, string> }[] = [];
    // 0: each worker picks a free port of its own.
    let metricsPort = o.workerMetricsPort;
    const nextMetricsPort = () => (o.workerMetricsPort === 0 ? 0 : metricsPort++);
    for (let k = 1; k <= o.workers; k++) {
      plan.push({ name: `worker-${k}`, role: 'worker', env: { WORKER_METRICS_PORT: String(nextMetricsPort()) } });
    }
    plan.push({ name: 'interactive', role: 'interactive', env: { WORKER_METRICS_PORT: String(nextMetricsPort()) } });
    const apiUrls: string[] = [];
    for (let k = 1; k <= o.apis; k++) {
      const port = o.apiPort + k - 1;
      apiUrls.push(`http://${host}:${port}`);
      plan.push({ name: `api-${k}`, role: 'api', env: { HOST: host, PORT: String(port) } });
    }
    for (const p of plan) {
      const dir = path.join(o.dir, p.name);
      fs.mkdirSync(dir, { recursive: true });
      const env = childEnv(
        process.env,
        o.env ?? {},
        roleEnv(p.role, shared),
        o.cpuWeights === false ? {} : cpuPriorityEnv(p.role),
        p.env,
        // Its PostgreSQL connections carry its name (pg_stat_activity.application_name): which host holds which.
        { DATA_DIR: dir, PGAPPNAME: `batchline-${p.name}` },
      );
      const proc: ClusterProcess = {
        name: p.name,
        role: p.role,
        dir,
        child: undefined as unknown as ChildProcess,
        restart() {
          if (proc.child && proc.child.exitCode === null && proc.child.signalCode === null) {
            throw new Error(`${p.name} is still running (pid ${proc.child.pid}): stop it before restarting it`);
          }
          const [command, ...args] = o.batchline;
          const child = spawn(command!, [...args, ROLES[p.role].command], {
            cwd: dir,
            env,
            stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
          });
          for (const stream of [child.stdout, child.stderr]) {
            readline
              .createInterface({ input: stream!, crlfDelay: Infinity })
              .on('line', (line) => line.trim() && onLine(p.name, line));
          }
          // A process that cannot be spawned at all (EAGAIN, ENOENT) is a host that did not come up: reported as such.
          child.once('error', (err) => {
            onLine(p.name, `could not start: ${err.message}`);
            if (!stopping && proc.child === child) o.onExit?.(proc, null, null);
          });
          child.once('exit', (code, signal) => {
            if (!stopping && proc.child === child) o.onExit?.(proc, code, signal);
          });
          proc.child = child;
        },
      };
      proc.restart();
      processes.push(proc);
    }
    cleanups.push(async () => {
      await Promise.all(processes.map((p) => stopChild(p.child, 15_000)));
    });

    return {
      databaseUrl,
      postgres,
      get temporal() {
        return temporal;
      },
      ui,
      processes,
      apiUrls,
      async restartTemporal({ downMs = 0 } = {}) {
        if (stopping) throw new Error('the cluster is stopping');
        restarting = true;
        try {
          await temporal.stop();
          if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
          temporal = watch(await startTemporalServer(temporalOptions));
        } finally {
          restarting = false;
        }
        const started = temporal;
        // Stopped meanwhile: its cleanup ran before this server existed.
        if (stopping) await started.stop();
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
