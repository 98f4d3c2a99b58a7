// A throwaway local Redis for the BullMQ peer of the system benchmark: no Docker, no root. Resolution order,
// first hit wins:
//   1. `redis-server` on PATH, if it is 7.x or later
//   2. the per-user cache: <cache>/redis/usr/bin/redis-server (cache: $BATCHLINE_CACHE_DIR, else ~/.cache/batchline)
//   3. Debian's packages, fetched into that cache under a lock: `apt-get download redis-tools` (its
//      redis-check-rdb is the server binary, which picks its mode from argv[0]; Debian's redis-server package
//      only adds the redis-server symlink, made here too) plus the libraries it links that this system lacks
//      (liblzf1, libjemalloc2, ...: found with ldd), each unpacked with `dpkg -x` and run with LD_LIBRARY_PATH.
// The server listens on a free loopback port with persistence off, in a temporary directory.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { withCacheLock } from '../../scripts/cache-lock.mjs';
import { cacheRoot } from '../../scripts/temporal-cli.mjs';
import { freePort } from '../../src/free-port.js';

const execFileAsync = promisify(execFile);

/** Oldest Redis major accepted (BullMQ needs 5+; Debian 12 ships 7.0). */
const MIN_MAJOR = 7;

export interface RedisServer {
  url: string;
  port: number;
  pid: number;
  /** Shuts the server down (SIGTERM, then SIGKILL after 5 s) and removes its directory. */
  stop(): Promise<void>;
}

interface RedisBinary {
  binary: string;
  env: NodeJS.ProcessEnv;
  version: string;
}

const say = (line: string) => process.stderr.write(`[redis] ${line}\n`);

/** Starts a private redis-server on loopback and resolves once it answers PING (within 10 s). */
export async function startRedis(): Promise<RedisServer> {
  const redis = await resolveRedisServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-redis-'));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(redis, dir, port);
    } catch (err) {
      // Another process may have taken the port between freePort() and the bind: try another one.
      if (attempt >= 3 || !/address already in use/i.test((err as Error).message)) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

async function launch(redis: RedisBinary, dir: string, port: number): Promise<RedisServer> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  args.push(
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--logfile',
    '',
    '--loglevel',
    'warning',
    '--maxmemory-policy',
    'noeviction',
  );
  const child = spawn(redis.binary, args, { env: redis.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(err.message));
    child.once('exit', (code, signal) => resolve(`exited with ${code ?? signal}`));
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const deadline = Date.now() + 10_000;
  let ready = false;
  while (!ready) {
    const early = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, 50, undefined))]);
    if (early !== undefined) {
      process.off('exit', killOnExit);
      throw new Error(
        `${redis.binary} (${redis.version}) ${early} before answering PING on port ${port}:\n${output.trim()}`,
      );
    }
    ready = await ping(port);
    if (!ready && Date.now() > deadline) {
      process.off('exit', killOnExit);
      await stopChild(child, exited);
      throw new Error(`${redis.binary} did not answer PING on port ${port} within 10 s:\n${output.trim()}`);
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    stop: async () => {
      process.off('exit', killOnExit);
      await stopChild(child, exited);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess, exited: Promise<string>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** True when a server on this loopback port answers an inline PING with +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** Finds or fetches a redis-server of at least MIN_MAJOR; the error lists every place tried. */
export async function resolveRedisServer(env: NodeJS.ProcessEnv = process.env): Promise<RedisBinary> {
  const tried: string[] = [];

  const onPath = findOnPath('redis-server', env);
  if (onPath) {
    const found = await check(onPath, env);
    if (found.ok) return found.redis;
    tried.push(`PATH: ${onPath}: ${found.reason}`);
  } else {
    tried.push('PATH: no redis-server');
  }

  const cacheDir = path.join(cacheRoot(env), 'redis');
  const cached = path.join(cacheDir, 'usr', 'bin', 'redis-server');
  if (fs.existsSync(cached)) {
    const found = await check(cached, withLibraries(cacheDir, env));
    if (found.ok) return found.redis;
    tried.push(`cache: ${cached}: ${found.reason}`);
  } else {
    tried.push(`cache: nothing at ${cached}`);
  }

  fs.mkdirSync(path.dirname(cacheDir), { recursive: true });
  const fetched = await withCacheLock(cacheDir, { log: say, what: 'fetching Redis' }, async (): Promise<Found> => {
    if (fs.existsSync(cached)) {
      const found = await check(cached, withLibraries(cacheDir, env)); // fetched by whoever held the lock
      if (found.ok) return found;
    }
    return fetchDebianPackages(cacheDir, env);
  });
  if (fetched.ok) return fetched.redis;
  tried.push(`Debian packages: ${fetched.reason}`);

  throw new Error(
    [
      `Could not obtain redis-server ${MIN_MAJOR}.x or later for the BullMQ benchmark. Tried, in order:`,
      ...tried.map((t) => `  - ${t}`),
      'Fix one of these:',
      '  - install it: apt-get install redis-server (or put a redis-server 7+ binary on PATH)',
      '  - or let this script fetch it: run `apt-get update` once (as root) so `apt-get download redis-tools` finds it',
    ].join('\n'),
  );
}

type Found = { ok: true; redis: RedisBinary } | { ok: false; reason: string };

/** Runs `<binary> --version` (`Redis server v=7.0.15 sha=...`) and judges the version. */
async function check(binary: string, env: NodeJS.ProcessEnv): Promise<Found> {
  try {
    const { stdout } = await execFileAsync(binary, ['--version'], { env, timeout: 10_000 });
    const m = /v=(\d+)\.(\d+)\.(\d+)/.exec(stdout);
    if (!m) return { ok: false, reason: `unrecognised version output '${stdout.trim()}'` };
    const version = `${m[1]}.${m[2]}.${m[3]}`;
    if (Number(m[1]) < MIN_MAJOR) return { ok: false, reason: `version ${version}, need ${MIN_MAJOR}.x or later` };
    return { ok: true, redis: { binary, env, version } };
  } catch (err) {
    return { ok: false, reason: `did not run (${(err as Error).message.split('\n')[0]})` };
  }
}

/**
 * Downloads redis-tools and the libraries it needs that the system lacks into a staging directory, unpacks them,
 * checks the server links and runs, then moves the tree to `target` (so a half-done fetch is never found).
 */
async function fetchDebianPackages(target: string, env: NodeJS.ProcessEnv): Promise<Found> {
  const started = Date.now();
  const staging = fs.mkdtempSync(`${target}.fetch-`);
  const root = path.join(staging, 'root');
  try {
    say(`fetching Debian's redis-tools into ${target} (once)`);
    const tools = await download('redis-tools', staging, env);
    if (!tools.ok) return tools;
    await execFileAsync('dpkg', ['-x', tools.deb, root]);
    const server = path.join(root, 'usr', 'bin', 'redis-server');
    if (!fs.existsSync(path.join(root, 'usr', 'bin', 'redis-check-rdb'))) {
      return { ok: false, reason: `${path.basename(tools.deb)} holds no usr/bin/redis-check-rdb (the server binary)` };
    }
    fs.symlinkSync('redis-check-rdb', server);

    let missing = await missingLibraries(server, withLibraries(root, env));
    if (missing.length > 0) {
      const { stdout } = await execFileAsync('dpkg-deb', ['-f', tools.deb, 'Depends']);
      const wanted = [];
      for (const name of stdout.split(',').map((d) => d.trim().split(/[\s(|]/)[0]!)) {
        if (name.startsWith('lib') && !(await isInstalled(name))) wanted.push(name);
      }
      say(
        `${missing.join(', ')} not on this system: fetching ${wanted.join(', ') || 'nothing (no candidate package)'}`,
      );
      for (const name of wanted) {
        const lib = await download(name, staging, env);
        if (!lib.ok) return lib;
        await execFileAsync('dpkg', ['-x', lib.deb, root]);
      }
      missing = await missingLibraries(server, withLibraries(root, env));
      if (missing.length > 0)
        return { ok: false, reason: `still missing after fetching ${wanted.join(', ')}: ${missing.join(', ')}` };
    }
    const found = await check(server, withLibraries(root, env));
    if (!found.ok) return found;
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(root, target);
    const redis = path.join(target, 'usr', 'bin', 'redis-server');
    say(`redis-server ${found.redis.version} ready at ${redis} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { ok: true, redis: { binary: redis, env: withLibraries(target, env), version: found.redis.version } };
  } catch (err) {
    return { ok: false, reason: (err as Error).message.split('\n')[0]! };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * `apt-get download NAME` into `dir` (no root needed). As root, an empty package list is refreshed once with
 * `apt-get update` and the download retried.
 */
async function download(
  name: string,
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ ok: true; deb: string } | { ok: false; reason: string }> {
  const attempt = async () => {
    await execFileAsync('apt-get', ['download', '-q', name], { cwd: dir, env, timeout: 120_000 });
    const deb = fs.readdirSync(dir).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${name} left no ${name}_*.deb`);
    return path.join(dir, deb);
  };
  try {
    return { ok: true, deb: await attempt() };
  } catch (first) {
    const absent = (first as NodeJS.ErrnoException).code === 'ENOENT';
    if (absent || process.getuid?.() !== 0)
      return { ok: false, reason: `apt-get download ${name}: ${lastLine(first)}` };
    try {
      say(`apt-get download ${name} failed (${lastLine(first)}); running apt-get update once`);
      await execFileAsync('apt-get', ['update', '-q'], { env, timeout: 300_000 });
      return { ok: true, deb: await attempt() };
    } catch (err) {
      return { ok: false, reason: `apt-get download ${name} (after apt-get update): ${lastLine(err)}` };
    }
  }
}

function lastLine(err: unknown): string {
  const e = err as Error & { stderr?: string; code?: string };
  if (e.code === 'ENOENT') return 'apt-get not found (not a Debian-based system)';
  const text = (e.stderr?.trim() || e.message).split('\n').filter((l) => !l.startsWith('W:'));
  return text[text.length - 1] ?? e.message;
}

/** Sonames `ldd` reports as `not found` for this binary. */
async function missingLibraries(binary: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const { stdout } = await execFileAsync('ldd', [fs.realpathSync(binary)], { env });
  return [...stdout.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]!);
}

async function isInstalled(pkg: string): Promise<boolean> {
  try {
    const { stdout } = await execFileAsync('dpkg-query', ['-W', '-f', '${db:Status-Status}', pkg]);
    return stdout.trim() === 'installed';
  } catch {
    return false;
  }
}

/** `env` with LD_LIBRARY_PATH listing every directory under <root>/lib and <root>/usr/lib that holds a .so. */
function withLibraries(root: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const dirs: string[] = [];
  const walk = (dir: string) => {
    const entries = fs.readdirSync(dir, { withFileTypes: true, encoding: 'utf8' });
    if (entries.some((e) => !e.isDirectory() && e.name.includes('.so'))) dirs.push(dir);
    for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name));
  };
  for (const base of ['lib', path.join('usr', 'lib')])
    if (fs.existsSync(path.join(root, base))) walk(path.join(root, base));
  if (dirs.length === 0) return env;
  return { ...env, LD_LIBRARY_PATH: [...dirs, env.LD_LIBRARY_PATH].filter(Boolean).join(path.delimiter) };
}

function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
