#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's built-in runner (through tsx), one file at a time: the workflow and
// end-to-end files each start a real Temporal dev server, and two cores do not run several well.
// Pass paths or substrings to run a subset: `node scripts/run-tests.mjs unit api`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const USAGE = 'usage: node scripts/run-tests.mjs [path or substring ...]   (none: every test/**/*.test.ts)';
let filters;
try {
  filters = parseArgs({ allowPositionals: true }).positionals;
} catch (err) {
  console.error(`${err.message}\n${USAGE}`);
  process.exit(2);
}

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const files = [];
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.ts')) files.push(path.relative(root, p));
  }
};
walk(path.join(root, 'test'));
const selected = files.sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (selected.length === 0) {
  console.error(`no test files match ${filters.join(', ')}`);
  process.exit(1);
}
const reporter = process.env.TEST_REPORTER ?? 'spec';
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-reporter=${reporter}`, ...selected],
  { cwd: root, stdio: 'inherit' },
);
process.exit(res.status ?? 1);
