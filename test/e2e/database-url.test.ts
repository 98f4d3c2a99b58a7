// A DATABASE_URL that cannot be used stops `batchline api` and `batchline worker` at start with one line naming
// the variable and the reason, never the password; against a real PostgreSQL for refused credentials and a schema
// newer than this code.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { SCHEMA_VERSION } from '../../src/stores/migrations.js';
import { PostgresItemStore } from '../../src/stores/postgres-item-store.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { ROOT, tempDir } from '../helpers/temporal.js';

const SECRET = 'hunter2-secret';

/** Runs `batchline <command>` with DATABASE_URL; resolves with its exit code and what it printed. */
function run(command: 'api' | 'worker', databaseUrl: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'main.ts'), command], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      DATA_DIR: tempDir('data'),
      // Nothing answers here: the store is checked before anything waits for Temporal.
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      PORT: '0',
      WORKER_METRICS_PORT: '0',
      LOG_LEVEL: 'silent',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

function assertOneLine(result: { code: number | null; output: string }, pattern: RegExp): void {
  assert.equal(result.code, 1, result.output);
  const lines = result.output.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${result.output}`);
  assert.match(lines[0]!, /DATABASE_URL/);
  assert.match(lines[0]!, pattern);
  assert.ok(!result.output.includes(SECRET), 'the password is never printed');
}

describe('a DATABASE_URL that cannot be used', () => {
  let server: TestPostgres;

  before(async () => {
    server = await startPostgres();
  });

  after(async () => {
    await server?.stop();
  });

  test('one that does not parse, or names another scheme: the API exits with one line', async () => {
    assertOneLine(await run('api', `not a url ${SECRET}`), /not a parseable URL/);
    assertOneLine(await run('api', `mysql://u:${SECRET}@localhost/db`), /postgres:\/\//);
  });

  test('credentials the server refuses: the worker exits with one line', async () => {
    const url = new URL(await server.createDatabase());
    url.password = SECRET;
    assertOneLine(await run('worker', url.toString()), /refused the credentials/);
  });

  test('a server that cannot be reached: the API exits with one line', async () => {
    assertOneLine(await run('api', `postgres://u:${SECRET}@127.0.0.1:1/db`), /cannot connect/);
  });

  test('a database a newer batchline migrated: refused, saying it is newer', async () => {
    const url = await server.createDatabase();
    await (await PostgresItemStore.open(url)).close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future', 'now')`, [
        SCHEMA_VERSION + 1,
      ]);
    } finally {
      await client.end();
    }
    const result = await run('api', url);
    assert.equal(result.code, 1, result.output);
    assert.equal(result.output.trim().split('\n').length, 1, result.output);
    assert.match(result.output, new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this batchline`));
  });
});
