// startDevServer when `temporal server start-dev` exits while starting (e.g. a port it picked itself was taken):
// it starts the process again, and when every attempt fails the error carries the panic's first line.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { resolveTemporalCli } from '../../src/cli/dev.js';
import { startDevServer } from '../../src/dev-server.js';
import { isTemporalReachable, ServerExitedError } from '../../src/server-process.js';
import { freePortBetween } from '../../src/free-port.js';
import { tempDir } from '../helpers/temporal.js';

/**
 * A stand-in CLI: its first `failures` runs print a Go-style panic (message first, then a long stack) and exit 2,
 * the way the dev server does when a port is taken; later runs exec the real CLI.
 */
function flakyCli(dir: string, realCli: string, failures: number): { path: string; runs: () => number } {
  const counter = path.join(dir, 'runs');
  fs.writeFileSync(counter, '');
  const script = path.join(dir, 'temporal-flaky.sh');
  fs.writeFileSync(
    script,
    `#!/bin/sh
echo run >> '${counter}'
if [ "$(wc -l < '${counter}')" -le ${failures} ]; then
  echo 'panic: failed assigning ephemeral port: listen tcp 127.0.0.1:0: bind: address already in use' >&2
  for i in $(seq 1 60); do echo "	/root/go/pkg/mod/example/frame$i.go:$i +0x1b9" >&2; done
  exit 2
fi
exec '${realCli}' "$@"
`,
    { mode: 0o755 },
  );
  return { path: script, runs: () => fs.readFileSync(counter, 'utf8').split('\n').filter(Boolean).length };
}

test('a dev server that exits while starting is started again, and then serves', async () => {
  const dir = tempDir('dev-server-start');
  const cli = flakyCli(dir, await resolveTemporalCli(), 2);
  const port = await freePortBetween(20_000, 32_767);
  const lines: string[] = [];
  const server = await startDevServer({
    cliPath: cli.path,
    dataDir: path.join(dir, 'data'),
    port,
    headless: true,
    onLine: (l) => lines.push(l),
  });
  try {
    assert.equal(cli.runs(), 3, 'two runs that exited, then the one that serves');
    assert.equal(await isTemporalReachable(server.address), true);
    assert.equal(lines.filter((l) => l.includes('starting it again')).length, 2);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a dev server that never starts fails after three attempts with the panic message in the error', async () => {
  const dir = tempDir('dev-server-start');
  const cli = flakyCli(dir, await resolveTemporalCli(), 100);
  const port = await freePortBetween(20_000, 32_767);
  try {
    await assert.rejects(
      startDevServer({ cliPath: cli.path, dataDir: path.join(dir, 'data'), port, headless: true }),
      (err: unknown) => {
        assert.ok(err instanceof ServerExitedError);
        assert.match(err.message, /^temporal server start-dev exited with 2:\npanic: failed assigning ephemeral port/);
        assert.match(err.message, /\[\d+ lines left out\]/);
        assert.match(err.message, /frame60\.go/, 'the last lines are kept too');
        return true;
      },
    );
    assert.equal(cli.runs(), 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
