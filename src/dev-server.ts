import fs from 'node:fs';
import path from 'node:path';
import { devServerSearchAttributeFlags } from './client/search-attributes.js';
import { BATCHLINE_DYNAMIC_CONFIG, type DynamicConfig } from './dynamic-config.js';
import { isTemporalReachable, ServerExitedError, startServerProcess, type ServerProcess } from './server-process.js';

export interface DevServerOptions {
  /** Path of the Temporal CLI binary (see scripts/temporal-cli.mjs). */
  cliPath: string;
  /** The server's SQLite file goes here as temporal.db, so state survives restarts. */
  dataDir: string;
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Frontend gRPC port. */
  port: number;
  /** Web UI port; omit or set headless to run without the UI. */
  uiPort?: number;
  headless?: boolean;
  namespace?: string;
  /** Receives the server's output, line by line. Default: dropped. */
  onLine?: (line: string) => void;
  /** How long to wait for the frontend to answer (default 60 s). */
  readyTimeoutMs?: number;
  /** Dynamic config values on top of (or replacing) DEV_SERVER_DYNAMIC_CONFIG, e.g. to measure a setting. */
  dynamicConfig?: DynamicConfig;
}

/** The dynamic config the dev server runs with (see BENCHMARKS.md, tuning). */
export const DEV_SERVER_DYNAMIC_CONFIG: DynamicConfig = {
  ...BATCHLINE_DYNAMIC_CONFIG,
  // The dev server has a single history shard, and by default its transfer queue (which hands new workflow and
  // activity tasks to matching) loads new tasks at most 20 times a second, a limit per shard that a cluster
  // multiplies by its many shards. With one shard, every sync predict and every new shard workflow waits for the
  // next load before its first workflow task, and waits longer while a batch keeps the queue busy.
  'history.transferProcessorMaxPollRPS': 1000,
};

/** How many times startDevServer starts the process when it exits before it serves. */
const DEV_SERVER_START_ATTEMPTS = 3;

export interface DevServer extends ServerProcess {
  address: string;
  uiUrl?: string;
}

/** Starts `temporal server start-dev` on the given ports with its SQLite file in dataDir; resolves once it answers. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  fs.mkdirSync(options.dataDir, { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(options.port),
    '--db-filename',
    path.join(options.dataDir, 'temporal.db'),
    '--namespace',
    namespace,
    // WAL: readers (visibility, UI) stop blocking the writer; NORMAL sync is durable across process crashes.
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
    ...Object.entries({ ...DEV_SERVER_DYNAMIC_CONFIG, ...options.dynamicConfig }).flatMap(([key, value]) => [
      '--dynamic-config-value',
      `${key}=${JSON.stringify(value)}`,
    ]),
    '--log-level',
    'warn',
    ...devServerSearchAttributeFlags(),
    ...(options.headless || options.uiPort === undefined ? ['--headless'] : ['--ui-port', String(options.uiPort)]),
  ];
  const address = `${host}:${options.port}`;
  const start = () =>
    startServerProcess({
      name: 'temporal server start-dev',
      command: options.cliPath,
      args,
      onLine: options.onLine,
      ready: () => isTemporalReachable(address, 1000),
      readyTimeoutMs: options.readyTimeoutMs,
    });
  // The dev server gives its history, matching and worker services ports it picks itself at start (bind to port 0,
  // then close): another process can take one before the service binds it, and the server then exits at once.
  // Starting again picks other ports; a cause that lasts fails every attempt and the last error says why.
  let server: ServerProcess | undefined;
  for (let attempt = 1; !server; attempt++) {
    try {
      server = await start();
    } catch (err) {
      if (!(err instanceof ServerExitedError) || attempt === DEV_SERVER_START_ATTEMPTS) throw err;
      options.onLine?.(`temporal server start-dev exited while starting (attempt ${attempt}); starting it again`);
    }
  }
  const uiUrl = options.headless || options.uiPort === undefined ? undefined : `http://${host}:${options.uiPort}`;
  return { address, uiUrl, ...server };
}
