#!/usr/bin/env node
// The Chromium the dashboard's end-to-end test drives (through puppeteer-core, which downloads no browser):
// $CHROMIUM_PATH when set, else Debian's /usr/bin/chromium, else `chromium` or `chromium-browser` on PATH. When none
// is found and installing is asked for, Debian's `chromium` package is installed with apt-get, which needs root;
// anywhere else the error says what to install. apt-get runs under the cache lock (scripts/cache-lock.mjs), so two
// set-ups at once (npm start beside npm test) do not run it together, and the second finds it installed.
// Only Node built-ins are imported at the top: the lock (which needs proper-lockfile) is imported when installing.
//
// Usage: node scripts/chromium.mjs [--install]  -> prints the browser's path on stdout (exit 1 when there is none).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const APT_TIMEOUT_MS = 20 * 60 * 1000;
const NAMES = ['chromium', 'chromium-browser'];

function executable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name, env) {
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    if (executable(file)) return file;
  }
  return undefined;
}

/**
 * The Chromium to drive, or undefined when there is none. CHROMIUM_PATH, when set, must be an executable: a wrong
 * value is an error, not a reason to look elsewhere.
 */
export function findChromium(env = process.env) {
  if (env.CHROMIUM_PATH) {
    if (!executable(env.CHROMIUM_PATH)) throw new Error(`CHROMIUM_PATH=${env.CHROMIUM_PATH} is not an executable file`);
    return env.CHROMIUM_PATH;
  }
  if (executable('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of NAMES) {
    const found = onPath(name, env);
    if (found) return found;
  }
  return undefined;
}

const WHAT_TO_INSTALL =
  'install Chromium (Debian/Ubuntu: `apt-get install chromium`) or set CHROMIUM_PATH to a Chromium or Chrome binary';

/**
 * Finds Chromium, installing Debian's package when it is missing and `install` is true (as root, with apt-get).
 * @returns {Promise<string>} the browser's path
 */
export async function resolveChromium({ env = process.env, log = () => {}, install = false } = {}) {
  const found = findChromium(env);
  if (found) return found;
  if (!install) throw new Error(`Chromium was not found: ${WHAT_TO_INSTALL}`);
  const apt = onPath('apt-get', env);
  if (!apt || process.getuid?.() !== 0) {
    throw new Error(
      `Chromium was not found, and it can be installed here only as root with apt-get: ${WHAT_TO_INSTALL}`,
    );
  }
  const { withCacheLock } = await import('./cache-lock.mjs');
  const cache = env.BATCHLINE_CACHE_DIR
    ? path.resolve(env.BATCHLINE_CACHE_DIR)
    : path.join(env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache'), 'batchline');
  fs.mkdirSync(cache, { recursive: true });
  return withCacheLock(
    path.join(cache, 'chromium-apt'),
    { log, what: 'installing Chromium with apt-get' },
    async () => {
      const again = findChromium(env); // another set-up may have installed it while this one waited
      if (again) return again;
      const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
      const run = async (args) => {
        log(`apt-get ${args.join(' ')}`);
        await execFileAsync(apt, args, { env: aptEnv, timeout: APT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }).catch(
          (err) => {
            const tail = String(err.stderr || err.message)
              .trim()
              .split('\n')
              .slice(-5)
              .join('\n');
            throw new Error(`apt-get ${args[0]} failed: ${tail}`, { cause: err });
          },
        );
      };
      await run(['update']);
      await run(['install', '-y', '--no-install-recommends', 'chromium']);
      const installed = findChromium(env);
      if (!installed) throw new Error(`apt-get installed chromium, yet no browser was found: ${WHAT_TO_INSTALL}`);
      return installed;
    },
  );
}

if (process.argv[1] && pathToFileURL(fs.realpathSync(process.argv[1])).href === import.meta.url) {
  const { values } = parseArgs({ options: { install: { type: 'boolean', default: false } } });
  try {
    const browser = await resolveChromium({
      install: values.install,
      log: (line) => process.stderr.write(`[chromium] ${line}\n`),
    });
    process.stdout.write(`${browser}\n`);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}

export const CHROMIUM_SCRIPT = fileURLToPath(import.meta.url);
