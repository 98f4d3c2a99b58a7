import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import lockfile from 'proper-lockfile';
import { lockPathOf } from '../../scripts/cache-lock.mjs';
import {
  TEMPORAL_CLI_VERSION,
  cacheRoot,
  cachedBinaryPath,
  parseCliVersion,
  resolveTemporalCli,
  versionFits,
} from '../../scripts/temporal-cli.mjs';

const VERSION_LINE = 'temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)';

/** A fresh temp dir, removed when the test ends. */
function tempDir(t: TestContext, prefix = 'batchline-cli-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeExecutable(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o755 });
  return file;
}

/** A fake `temporal` that prints the given version line for any arguments. */
function fakeTemporal(dir: string, versionLine: string): string {
  return writeExecutable(path.join(dir, 'temporal'), `#!/bin/sh\necho '${versionLine}'\n`);
}

/**
 * A fake `go`: answers `go version`; for `go install` waits `sleepSeconds`, writes an executable "$GOBIN/temporal"
 * and appends one line with its arguments to `counter`.
 */
function fakeGo(dir: string, counter: string, sleepSeconds: number): string {
  return writeExecutable(
    path.join(dir, 'go'),
    [
      '#!/bin/sh',
      'PATH=/usr/bin:/bin',
      'if [ "$1" = "version" ]; then echo "go version go1.24.0 linux/amd64"; exit 0; fi',
      'if [ "$1" = "install" ]; then',
      `  sleep ${sleepSeconds}`,
      '  printf \'#!/bin/sh\\necho "temporal version 1.5.1"\\n\' > "$GOBIN/temporal"',
      '  chmod 755 "$GOBIN/temporal"',
      `  echo "$*" >> '${counter}'`,
      '  exit 0',
      'fi',
      'exit 2',
    ].join('\n') + '\n',
  );
}

/** An environment that sees nothing of this machine: an empty PATH dir, a private cache, no Go, no network. */
function isolatedEnv(t: TestContext): NodeJS.ProcessEnv {
  const root = tempDir(t);
  const emptyBin = path.join(root, 'empty-bin');
  fs.mkdirSync(emptyBin);
  return {
    PATH: emptyBin,
    HOME: path.join(root, 'home'),
    BATCHLINE_CACHE_DIR: path.join(root, 'cache'),
    GO_BINARY: '/nonexistent/go',
    TEMPORAL_CLI_DOWNLOAD_URL: 'http://127.0.0.1:9',
  };
}

const lockPath = (env: NodeJS.ProcessEnv): string => lockPathOf(path.dirname(cachedBinaryPath(env)));

const SCRIPT = fileURLToPath(new URL('../../scripts/temporal-cli.mjs', import.meta.url));

/** Runs `node scripts/temporal-cli.mjs` in a process of its own with `env`; resolves with its exit code and output. */
function resolveInChild(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [SCRIPT], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('parseCliVersion and versionFits', () => {
  test('parses the version out of `temporal --version`', () => {
    assert.deepEqual(parseCliVersion(VERSION_LINE), [1, 5, 1]);
    assert.deepEqual(parseCliVersion('temporal version 0.0.0-DEV'), [0, 0, 0]);
    assert.equal(parseCliVersion('something else'), undefined);
  });

  test('the pinned version is 1.5.1', () => {
    assert.equal(TEMPORAL_CLI_VERSION, '1.5.1');
  });

  test('accepts the pinned version and later 1.x versions', () => {
    assert.equal(versionFits([1, 5, 1]), true);
    assert.equal(versionFits([1, 5, 2]), true);
    assert.equal(versionFits([1, 6, 0]), true);
  });

  test('rejects earlier versions, another major, and an unknown version', () => {
    assert.equal(versionFits([1, 5, 0]), false);
    assert.equal(versionFits([1, 4, 9]), false);
    assert.equal(versionFits([0, 0, 0]), false);
    assert.equal(versionFits([2, 0, 0]), false);
    assert.equal(versionFits(undefined), false);
  });
});

describe('cacheRoot and cachedBinaryPath', () => {
  test('BATCHLINE_CACHE_DIR wins, then XDG_CACHE_HOME, then ~/.cache', () => {
    assert.equal(cacheRoot({ BATCHLINE_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' }), '/c');
    assert.equal(cacheRoot({ XDG_CACHE_HOME: '/x' }), '/x/batchline');
    assert.equal(cacheRoot({}), path.join(os.homedir(), '.cache', 'batchline'));
  });

  test('the cached binary lives in a directory named after the pinned version', () => {
    assert.equal(cachedBinaryPath({ BATCHLINE_CACHE_DIR: '/c' }), `/c/temporal-cli-${TEMPORAL_CLI_VERSION}/temporal`);
  });
});

describe('resolveTemporalCli', () => {
  test('$TEMPORAL_CLI pointing at an executable file is returned as is', async (t) => {
    const env = isolatedEnv(t);
    env.TEMPORAL_CLI = fakeTemporal(tempDir(t), VERSION_LINE);

    const resolved = await resolveTemporalCli({ env, log: () => {} });

    assert.equal(resolved, env.TEMPORAL_CLI);
  });

  test('$TEMPORAL_CLI pointing at a missing file throws an error naming TEMPORAL_CLI', async (t) => {
    const env = isolatedEnv(t);
    env.TEMPORAL_CLI = path.join(tempDir(t), 'no-such-temporal');

    await assert.rejects(resolveTemporalCli({ env, log: () => {} }), (err: Error) => {
      assert.match(err.message, /TEMPORAL_CLI=.*no-such-temporal is not an executable file/);
      return true;
    });
  });

  test('$TEMPORAL_CLI pointing at a directory throws instead of falling through to other routes', async (t) => {
    const env = isolatedEnv(t);
    env.TEMPORAL_CLI = tempDir(t);
    writeExecutable(cachedBinaryPath(env), '#!/bin/sh\n');

    await assert.rejects(resolveTemporalCli({ env, log: () => {} }), /TEMPORAL_CLI=/);
  });

  test('a `temporal` on PATH whose version fits is used', async (t) => {
    const env = isolatedEnv(t);
    const bin = tempDir(t);
    const onPath = fakeTemporal(bin, VERSION_LINE);
    env.PATH = `${env.PATH}${path.delimiter}${bin}`;

    const resolved = await resolveTemporalCli({ env, log: () => {} });

    assert.equal(resolved, onPath);
  });

  test('a fitting `temporal` on PATH is preferred over the cache', async (t) => {
    const env = isolatedEnv(t);
    const bin = tempDir(t);
    const onPath = fakeTemporal(bin, VERSION_LINE);
    env.PATH = bin;
    writeExecutable(cachedBinaryPath(env), '#!/bin/sh\n');

    assert.equal(await resolveTemporalCli({ env, log: () => {} }), onPath);
  });

  test('a `temporal` on PATH at version 1.0.0 is skipped in favour of the cached binary', async (t) => {
    const env = isolatedEnv(t);
    const bin = tempDir(t);
    fakeTemporal(bin, 'temporal version 1.0.0 (Server 1.20.0, UI 2.0.0)');
    env.PATH = bin;
    const cached = writeExecutable(cachedBinaryPath(env), '#!/bin/sh\n');

    const resolved = await resolveTemporalCli({ env, log: () => {} });

    assert.equal(resolved, cached);
  });

  test('when every route fails, one error lists each route tried and how to fix it', async (t) => {
    const env = isolatedEnv(t);

    const err = await resolveTemporalCli({ env, log: () => {} }).then(
      () => assert.fail('expected resolveTemporalCli to reject'),
      (e: Error) => e,
    );

    const message = err.message;
    assert.match(message, /Could not obtain the Temporal CLI 1\.5\.1/);
    assert.match(message, /\$TEMPORAL_CLI: not set/);
    assert.match(message, /PATH: no `temporal` binary/);
    assert.ok(message.includes(`cache: nothing at ${cachedBinaryPath(env)}`), message);
    assert.match(message, /go install \S+@v1\.5\.1: Go not available \(`\/nonexistent\/go version` failed\)/);
    assert.match(message, /download: http:\/\/127\.0\.0\.1:9\/v1\.5\.1\?\S+ failed/);
    assert.match(message, /Fix one of these/);
    assert.match(message, /go install github\.com\/temporalio\/cli\/cmd\/temporal@v1\.5\.1/);
    assert.match(message, /set TEMPORAL_CLI=/);
    // the routes come in the documented order
    const order = ['$TEMPORAL_CLI:', 'PATH:', 'cache:', 'go install github', 'download:'].map((s) =>
      message.indexOf(s),
    );
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      message,
    );
    assert.ok(!fs.existsSync(lockPath(env)), 'lock released');
  });

  test('with build and download disabled, the error says so', async (t) => {
    const env = isolatedEnv(t);

    await assert.rejects(
      resolveTemporalCli({ env, log: () => {}, allowBuild: false, allowDownload: false }),
      (err: Error) => {
        assert.match(err.message, /go install: disabled/);
        assert.match(err.message, /download: disabled/);
        return true;
      },
    );
  });

  test(
    'two processes resolving at once build with Go once, one waiting on the other, with the version stamped',
    { timeout: 30_000 },
    async (t) => {
      const env = isolatedEnv(t);
      const work = tempDir(t);
      const counter = path.join(work, 'go-install-calls');
      env.GO_BINARY = fakeGo(work, counter, 2);

      const [first, second] = await Promise.all([resolveInChild(env), resolveInChild(env)]);

      const cached = cachedBinaryPath(env);
      for (const run of [first, second]) {
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout.trim(), cached);
      }
      const calls = fs.readFileSync(counter, 'utf8').trim().split('\n');
      assert.equal(calls.length, 1, `go install ran ${calls.length} times:\n${calls.join('\n')}`);
      assert.match(calls[0]!, /^install -ldflags=.*-X github\.com\/temporalio\/cli\/temporalcli\.Version=1\.5\.1/);
      assert.match(calls[0]!, /github\.com\/temporalio\/cli\/cmd\/temporal@v1\.5\.1$/);
      assert.ok(fs.statSync(cached).isFile());
      assert.ok(!fs.existsSync(lockPath(env)), `lock ${lockPath(env)} left behind`);
      const leftovers = fs.readdirSync(path.dirname(cached)).filter((f) => f.startsWith('.build-'));
      assert.deepEqual(leftovers, [], 'staging dirs removed');
      // one process really overlapped the other and waited on its lock (else this test proves nothing)
      const waited = [first, second].filter((run) =>
        run.stderr.includes('is obtaining the Temporal CLI; waiting for it'),
      );
      assert.equal(waited.length, 1, `${first.stderr}\n---\n${second.stderr}`);
    },
  );

  test('the Go route looks `go` up on the PATH of the env it was given, not the process PATH', async (t) => {
    const env = isolatedEnv(t);
    const work = tempDir(t);
    const counter = path.join(work, 'go-install-calls');
    const goDir = path.join(work, 'go-bin');
    fakeGo(goDir, counter, 0);
    delete env.GO_BINARY; // plain `go`, found through PATH
    env.PATH = `${env.PATH}${path.delimiter}${goDir}`;
    // the process itself has no Go on its PATH: only env.PATH does
    const processPath = process.env.PATH;
    process.env.PATH = path.dirname(String(env.PATH).split(path.delimiter)[0]!);
    t.after(() => {
      process.env.PATH = processPath;
    });

    const result = await resolveTemporalCli({ env, log: () => {}, allowDownload: false }).then(
      (p) => p,
      (err: Error) => err.message,
    );

    assert.equal(result, cachedBinaryPath(env));
    assert.equal(fs.readFileSync(counter, 'utf8').trim().split('\n').length, 1);
  });

  test(
    'a lock its holder stopped refreshing (a process that died) is taken over at once and the build proceeds',
    { timeout: 30_000 },
    async (t) => {
      const env = isolatedEnv(t);
      const work = tempDir(t);
      const counter = path.join(work, 'go-install-calls');
      env.GO_BINARY = fakeGo(work, counter, 0);
      const lock = lockPath(env);
      fs.mkdirSync(lock, { recursive: true });
      const minuteAgo = new Date(Date.now() - 60_000);
      fs.utimesSync(lock, minuteAgo, minuteAgo);
      const logs: string[] = [];

      const resolved = await resolveTemporalCli({ env, log: (line) => void logs.push(line) });

      assert.equal(resolved, cachedBinaryPath(env));
      assert.equal(fs.readFileSync(counter, 'utf8').trim().split('\n').length, 1);
      assert.ok(!logs.some((l) => l.includes('waiting for it')), `waited on the dead holder:\n${logs.join('\n')}`);
      assert.ok(!fs.existsSync(lock), 'lock released');
    },
  );

  test(
    'a lock held by a live process is waited for, and what that process built is used without building again',
    { timeout: 30_000 },
    async (t) => {
      const env = isolatedEnv(t);
      const work = tempDir(t);
      const counter = path.join(work, 'go-install-calls');
      env.GO_BINARY = fakeGo(work, counter, 0);
      const cached = cachedBinaryPath(env);
      fs.mkdirSync(path.dirname(cached), { recursive: true });
      const release = await lockfile.lock(path.dirname(cached), { realpath: false, lockfilePath: lockPath(env) });
      const logs: string[] = [];

      const resolving = resolveTemporalCli({ env, log: (line) => void logs.push(line) });
      const deadline = Date.now() + 10_000;
      while (!logs.some((l) => l.includes('waiting for it')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      writeExecutable(cached, '#!/bin/sh\n'); // what the holder obtained
      await release();

      assert.equal(await resolving, cached);
      assert.ok(
        logs.some((l) => l.includes('is obtaining the Temporal CLI; waiting for it')),
        logs.join('\n'),
      );
      assert.ok(!fs.existsSync(counter), 'go install did not run');
      assert.ok(!fs.existsSync(lockPath(env)), 'lock released');
    },
  );
});
