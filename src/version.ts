import fs from 'node:fs';

let cached: string | undefined;

/** batchline's version, from the nearest package.json above this file (in src/ and in dist/ alike). */
export function packageVersion(): string {
  if (cached) return cached;
  cached = '0.0.0';
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    const file = new URL('package.json', dir);
    if (fs.existsSync(file)) {
      cached = String(JSON.parse(fs.readFileSync(file, 'utf8')).version ?? '0.0.0');
      break;
    }
  }
  return cached;
}
