import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Config } from '../config.js';
import { startCluster, type Cluster } from '../cluster/cluster.js';
import { StartupError } from '../errors.js';
import { parseDatabaseUrl } from '../stores/postgres.js';
import { projectRoot, waitForHttp } from './dev.js';
import { printLine } from './output.js';

export interface ClusterCommandOptions {
  workers: number;
  apis: number;
}

/** Resolves the cluster's binaries with scripts/temporal-server.mjs (built once per machine). */
async function resolveBinaries() {
  const script = path.join(projectRoot(), 'scripts', 'temporal-server.mjs');
  const mod = (await import(script)) as typeof import('../../scripts/temporal-server.mjs');
  return mod.resolveTemporalServer({ log: (line) => printLine('cluster', line) });
}

/**
 * `batchline cluster` (what `npm run cluster` runs): a multi-host deployment rehearsed on one machine (see
 * src/cluster/cluster.ts and docs/cluster.md). State under <DATA_DIR>/cluster. Ctrl-C stops everything it started.
 * A batchline process that dies is reported and left dead, as a host that died would be; the rest keeps running.
 */
export async function runCluster(config: Config, options: ClusterCommandOptions): Promise<number> {
  const log = (msg: string) => printLine('cluster', msg);
  const [host, port] = config.TEMPORAL_ADDRESS.split(':') as [string, string];
  if (!net.isIPv4(host)) {
    throw new StartupError(
      `TEMPORAL_ADDRESS=${config.TEMPORAL_ADDRESS}: batchline cluster binds the Temporal server to that host and ` +
        'advertises it to its own services, so it must be an IPv4 address of this machine (e.g. 127.0.0.1:7233)',
    );
  }
  // Every fixed port must be free before anything starts: a server that cannot bind would otherwise be mistaken
  // for whatever already answers there (an `npm start` on the default ports).
  const wanted: [number, string][] = [
    [Number(port), 'the Temporal frontend (TEMPORAL_ADDRESS)'],
    [config.TEMPORAL_UI_PORT, 'the Temporal Web UI (TEMPORAL_UI_PORT)'],
    ...Array.from({ length: options.apis }, (_, k): [number, string] => [
      config.PORT + k,
      `API ${k + 1} (PORT + ${k})`,
    ]),
    ...(config.WORKER_METRICS_PORT === 0
      ? []
      : Array.from({ length: options.workers + 1 }, (_, k): [number, string] => [
          config.WORKER_METRICS_PORT + k,
          `a worker's /metrics (WORKER_METRICS_PORT + ${k})`,
        ])),
  ];
  for (const [p, what] of wanted) {
    if (!(await portIsFree(host, p))) {
      throw new StartupError(
        `port ${p} on ${host}, for ${what}, is in use: is \`batchline dev\` (npm start) or another cluster ` +
          'running? Stop it, or choose other ports (docs/operations.md#configuration).',
      );
    }
  }
  const binaries = await resolveBinaries();
  const root = projectRoot();
  let cluster: Cluster | undefined;
  let stopping = false;
  let exitCode = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stop = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    log(`stopping (${reason})`);
    await cluster?.stop();
    resolveDone();
  };
  process.once('SIGINT', () => void stop('SIGINT', 0));
  process.once('SIGTERM', () => void stop('SIGTERM', 0));
  process.once('SIGHUP', () => void stop('SIGHUP: the terminal closed', 0));

  const dir = path.join(config.DATA_DIR, 'cluster');
  log(
    `starting ${config.DATABASE_URL ? 'on the PostgreSQL at DATABASE_URL' : 'a local PostgreSQL'}, ` +
      `the Temporal server, ${options.workers} batch worker(s), an interactive worker and ${options.apis} API(s); ` +
      `state in ${dir}`,
  );
  try {
    cluster = await startCluster({
      root,
      dir,
      binaries,
      batchline: [process.execPath, ...portableExecArgv(), path.resolve(process.argv[1]!)],
      workers: options.workers,
      apis: options.apis,
      databaseUrl: config.DATABASE_URL,
      host,
      temporalPort: Number(port),
      apiPort: config.PORT,
      uiPort: config.TEMPORAL_UI_PORT,
      workerMetricsPort: config.WORKER_METRICS_PORT,
      cpuWeights: config.CLUSTER_CPU_WEIGHTS,
      namespace: config.TEMPORAL_NAMESPACE,
      modelRepository: config.MODEL_REPOSITORY,
      onLine: (source, line) => stopping || printLine(source, line),
      onExit: (proc, code, signal) => log(`${proc.name} exited with ${code ?? signal}; the others keep running`),
      onServerExit: (name, code) =>
        void stop(`the ${name === 'ui' ? 'Temporal Web UI' : 'Temporal server'} exited with ${code}`, 1),
    });
  } catch (err) {
    if (stopping) return exitCode;
    throw new StartupError(`the cluster did not start: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (stopping) {
    await cluster.stop();
    return exitCode;
  }
  const apis = cluster.processes.filter((p) => p.role === 'api');
  const up = await Promise.all(
    cluster.apiUrls.map((url, k) =>
      waitForHttp(`${url}/healthz`, 120_000, () => !stopping && apis[k]!.child.exitCode === null),
    ),
  );
  if (up.every(Boolean)) {
    log('the batchline cluster is up');
    cluster.apiUrls.forEach((url, k) => log(`  API ${k + 1}        ${url}   (try: curl ${url}/healthz)`));
    log(`  Temporal     ${cluster.temporal.address}   namespace ${config.TEMPORAL_NAMESPACE}, on PostgreSQL`);
    if (cluster.ui) log(`  Temporal UI  ${cluster.ui.url}`);
    log(
      `  PostgreSQL   ${parseDatabaseUrl(cluster.databaseUrl).redacted}   (item store; Temporal's databases beside it)`,
    );
    for (const p of cluster.processes) log(`  ${p.name.padEnd(12)} pid ${p.child.pid}   ${p.dir}`);
    log('Press Ctrl-C to stop.');
  } else if (!stopping) {
    await stop('an API exited, or did not answer /healthz within 120 s', 1);
  }
  await done;
  return exitCode;
}

/**
 * This process's Node options for its children, which run in directories of their own: a module named by a bare
 * specifier or a relative path (`--import tsx`) is resolved here, where it resolves, into an absolute URL.
 */
function portableExecArgv(): string[] {
  const args = [...process.execArgv];
  for (let i = 0; i < args.length - 1; i++) {
    if (args[i] !== '--import' && args[i] !== '--loader') continue;
    const spec = args[i + 1]!;
    if (path.isAbsolute(spec) || /^[a-z]+:/.test(spec)) continue;
    try {
      args[i + 1] = import.meta.resolve(spec.startsWith('.') ? pathToFileURL(path.resolve(spec)).href : spec);
    } catch {
      // left as given: the child reports it
    }
  }
  return args;
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}
