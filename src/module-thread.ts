import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread running the module `name` that sits beside `base` (the caller's `import.meta.url`): the
 * compiled .js, or (tests, running from source) the .ts source behind tsx's loader, which a worker thread does not
 * inherit from the parent's `--import tsx`.
 */
export function startModuleThread(base: string, name: string, workerData: unknown): Worker {
  const js = new URL(`./${name}.js`, base);
  if (fs.existsSync(fileURLToPath(js))) return new Worker(js, { workerData });
  const ts = new URL(`./${name}.ts`, base).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(ts)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
