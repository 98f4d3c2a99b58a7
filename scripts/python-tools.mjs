#!/usr/bin/env node
// The Python environment the tests run their Python tools in (Triton's HTTP client, schemathesis): a venv made once
// per machine from the exact pins in scripts/python-tools-requirements.txt, installed from PyPI with --no-deps so
// nothing else is resolved. It lives in the per-user cache under a name that carries a hash of the pins and of the
// Python's version, so a change to either makes a new venv and never mutates one a running test uses.
//
// The venv is made in place (console scripts in bin/ carry its absolute path, so it cannot be built elsewhere and
// renamed), under a lock (scripts/cache-lock.mjs) so two processes asking at once make it once; a stamp file
// written last marks it complete, and a directory without the stamp (an interrupted run) is removed and made again.
// Only Node built-ins are imported at the top: the lock (which needs proper-lockfile) is imported when a venv must
// be made, so a test that finds the venv ready needs nothing else.
//
// Usage: node scripts/python-tools.mjs  -> makes the venv if needed and prints its python's path on stdout.
// Environment: BATCHLINE_CACHE_DIR (default ~/.cache/batchline); PYTHON (default python3, >= 3.10) makes the venv.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

/** The pins, one requirement a line, comments allowed. */
export const REQUIREMENTS_FILE = path.join(here, 'python-tools-requirements.txt');
const STAMP = '.batchline-ready';
const PIP_TIMEOUT_MS = 15 * 60 * 1000;

/** The per-user cache root: $BATCHLINE_CACHE_DIR, else $XDG_CACHE_HOME/batchline, else ~/.cache/batchline. */
function cacheRoot(env) {
  if (env.BATCHLINE_CACHE_DIR) return path.resolve(env.BATCHLINE_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'batchline');
}

function pythonCommand(env) {
  return env.PYTHON || 'python3';
}

/** The paths inside a venv directory. */
function layout(dir) {
  const bin = path.join(dir, process.platform === 'win32' ? 'Scripts' : 'bin');
  return { dir, bin, python: path.join(bin, process.platform === 'win32' ? 'python.exe' : 'python') };
}

async function pythonVersion(python, env) {
  try {
    const { stdout } = await execFileAsync(python, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'], {
      env,
      timeout: 20_000,
    });
    return stdout.trim();
  } catch (err) {
    throw new Error(`${python} could not be run (${err.message}); set PYTHON to a Python 3.10 or later`, {
      cause: err,
    });
  }
}

/** The venv's directory for these pins and this Python: python-tools-<first 12 hex of sha256>. */
export function venvDirectory(pins, version, env = process.env) {
  const hash = crypto.createHash('sha256').update(`${version}\n${pins}`).digest('hex').slice(0, 12);
  return path.join(cacheRoot(env), `python-tools-${hash}`);
}

async function makeVenv(python, paths, env, log) {
  fs.rmSync(paths.dir, { recursive: true, force: true });
  log(`creating the Python tools venv ${paths.dir}`);
  await execFileAsync(python, ['-m', 'venv', paths.dir], { env, timeout: 120_000 });
  log(`pip install --no-deps -r ${path.relative(process.cwd(), REQUIREMENTS_FILE)} (PyPI, once)`);
  const pip = ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-q', '--no-deps'];
  await execFileAsync(paths.python, [...pip, '-r', REQUIREMENTS_FILE], {
    env,
    timeout: PIP_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((err) => {
    throw new Error(`pip could not install the Python tools: ${String(err.stderr || err.message).trim()}`, {
      cause: err,
    });
  });
  fs.writeFileSync(path.join(paths.dir, STAMP), `${new Date().toISOString()}\n`);
}

/**
 * Makes the Python tools venv if it is not there yet, and returns where its python and its scripts are.
 * @param {{ env?: NodeJS.ProcessEnv, log?: (line: string) => void }} [options]
 * @returns {Promise<{ python: string, bin: string, dir: string }>}
 */
export async function pythonTools(options = {}) {
  const env = options.env ?? process.env;
  const log = options.log ?? ((line) => process.stderr.write(`[python-tools] ${line}\n`));
  const python = pythonCommand(env);
  const version = await pythonVersion(python, env);
  const [major, minor] = version.split('.').map(Number);
  if (major !== 3 || minor < 10) throw new Error(`${python} is Python ${version}; the tools need 3.10 or later`);
  const paths = layout(venvDirectory(fs.readFileSync(REQUIREMENTS_FILE, 'utf8'), version, env));
  const ready = () => fs.existsSync(path.join(paths.dir, STAMP));
  if (ready()) return paths;
  fs.mkdirSync(path.dirname(paths.dir), { recursive: true });
  const { withCacheLock } = await import('./cache-lock.mjs');
  await withCacheLock(paths.dir, { log, what: 'making the Python tools venv' }, async () => {
    if (!ready()) await makeVenv(python, paths, env, log);
  });
  return paths;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    parseArgs({ options: {} });
  } catch (err) {
    process.stderr.write(`${err.message}\nusage: node scripts/python-tools.mjs\n`);
    process.exit(2);
  }
  try {
    const { python } = await pythonTools();
    process.stdout.write(`${python}\n`);
  } catch (err) {
    process.stderr.write(`[python-tools] ${err.message}\n`);
    process.exit(1);
  }
}
