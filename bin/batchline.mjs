#!/usr/bin/env node
// The `batchline` command: runs the compiled CLI (npm run build, or npm start, produces dist/).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!fs.existsSync(fileURLToPath(main))) {
  console.error('batchline is not built yet: run `npm run build` (or `npm start`, which builds first).');
  process.exit(1);
}
await import(main.href);
