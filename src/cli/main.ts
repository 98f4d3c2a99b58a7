import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { StartupError } from '../errors.js';
import { CLIENT_COMMANDS, runClient } from './client/program.js';

const USAGE = `usage: batchline <command>

commands:
  dev             the Temporal dev server (unless one answers at TEMPORAL_ADDRESS), two workers (batch,
                  interactive) and the API
  cluster         a multi-host deployment rehearsed on one machine: PostgreSQL (DATABASE_URL, or a local one),
                  the Temporal server on it, N batch workers, an interactive worker and M APIs as separate processes
                    --workers N   batch workers (default 2)
                    --apis M      APIs on PORT, PORT+1, ... (default 2)
  api             the HTTP API only
  worker          one Temporal worker only
  temporal-setup  registers the namespace and search attributes on the Temporal server at TEMPORAL_ADDRESS

client commands (the API at BATCHLINE_URL, default http://127.0.0.1:3000, with BATCHLINE_API_KEY):
  submit FILE|- --model M [--version V] [--chunk N] [--follow]
                  stream an NDJSON file (or stdin) into a new batch; --follow shows progress until it ends
  status ID       a batch's state, counts, rate and ETA
  ls              batches, newest first [--status S] [--model M] [--limit N] [--cursor C] [--all]
  results ID      finished items as NDJSON [--follow] [--failed] [--cursor INDEX]
  cancel|pause|resume|retry-failed ID
  predict MODEL --input JSON
                  one online prediction
  every client command takes --json and --help; exit codes: 0 ok, 1 failed items, 2 usage, 3 API; see docs/cli.md

Configuration comes from the environment; see docs/operations.md#configuration.`;

/**
 * Client commands go to runClient (commander). The server commands' modules (Temporal's worker, the API,
 * onnxruntime) are imported only by the command that runs them, so a client command starts without loading them.
 */
async function main(argv: string[]): Promise<number> {
  if (argv[0] !== undefined && CLIENT_COMMANDS.includes(argv[0])) return runClient(argv, process.env);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        workers: { type: 'string' },
        apis: { type: 'string' },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command, ...extra] = parsed.positionals;
  if (command === undefined || command === 'help' || parsed.values.help) {
    console.log(USAGE);
    return command === undefined && !parsed.values.help ? 2 : 0;
  }
  if (extra.length > 0) {
    console.error(`unexpected argument '${extra[0]}' after '${command}'\n\n${USAGE}`);
    return 2;
  }
  if (command !== 'cluster' && (parsed.values.workers !== undefined || parsed.values.apis !== undefined)) {
    console.error(`--workers and --apis belong to 'cluster', not '${command}'\n\n${USAGE}`);
    return 2;
  }
  const counts: Record<'workers' | 'apis', number> = { workers: 2, apis: 2 };
  for (const key of ['workers', 'apis'] as const) {
    const raw = parsed.values[key];
    if (raw === undefined) continue;
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 32) {
      console.error(`--${key} must be a whole number from 1 to 32, not '${raw}'\n\n${USAGE}`);
      return 2;
    }
    counts[key] = Number(raw);
  }
  const config = loadConfig();
  switch (command) {
    case 'cluster':
      return (await import('./cluster.js')).runCluster(config, counts);
    case 'temporal-setup': {
      const { connectTemporal } = await import('../client/connection.js');
      const { ensureNamespace } = await import('../client/namespace.js');
      const connection = await connectTemporal(config.TEMPORAL_ADDRESS);
      try {
        const done = await ensureNamespace(connection, config.TEMPORAL_NAMESPACE);
        console.log(
          `namespace ${config.TEMPORAL_NAMESPACE}: ${done.namespaceCreated ? 'created' : 'exists'}; ` +
            `search attributes added: ${done.searchAttributesAdded.join(', ') || 'none'}`,
        );
      } finally {
        await connection.close();
      }
      return 0;
    }
    case 'dev':
      return (await import('./dev.js')).runDev(config);
    case 'api': {
      const { createLogger } = await import('../logger.js');
      const { startServer } = await import('../server.js');
      const log = createLogger(config.LOG_LEVEL, 'api');
      const started = await startServer(config, log);
      await untilStopped(log);
      await started.close();
      return 0;
    }
    case 'worker': {
      const { createLogger, routeTemporalLogs } = await import('../logger.js');
      const { freePort } = await import('../free-port.js');
      const { lowerCpuPriority } = await import('./cpu-priority.js');
      const { startWorker } = await import('../worker.js');
      const log = createLogger(config.LOG_LEVEL, 'worker');
      lowerCpuPriority(config, log);
      // The SDK's own metrics go to an exporter on a free loopback port; the worker's /metrics appends them.
      const sdkMetricsPort = await freePort();
      routeTemporalLogs(log, `127.0.0.1:${sdkMetricsPort}`);
      const started = await startWorker(
        config,
        log,
        {},
        { sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics` },
      );
      // The SDK shuts the worker down on SIGINT/SIGTERM; a dev supervisor that vanishes does the same.
      process.once('disconnect', () => void started.shutdown());
      await started.running;
      return 0;
    }
    default:
      console.error(`unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

/** Resolves on SIGINT, SIGTERM, or when the supervising `batchline dev` process goes away. */
function untilStopped(log: { info: (o: object, m: string) => void }): Promise<void> {
  return new Promise((resolve) => {
    const stop = (reason: string) => {
      log.info({ reason }, 'stopping');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('disconnect', () => stop('supervisor gone'));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof StartupError) console.error(err.message);
    else console.error('batchline failed:', err);
    process.exit(1);
  },
);
