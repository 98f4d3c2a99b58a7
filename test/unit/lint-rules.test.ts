// The lint rules that keep the architecture must fire: a misconfigured plugin passes every file silently (the
// import-cycle rule once saw no edges at all, because './x.js' did not resolve to x.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ESLint } from 'eslint';
import { ROOT } from '../helpers/temporal.js';

// Probe files live inside the type-checked tree (the rules need type information), and are removed afterwards.
const probe = path.join(ROOT, 'src', 'stores', `lint-probe-${process.pid}`);
// Under CI=true typescript-eslint assumes one run over files that do not change, builds its program once and never
// sees files written after that; these probes are written as the tests go.
process.env.TSESTREE_SINGLE_RUN = 'false';
const eslint = new ESLint({ cwd: ROOT });

async function ruleIds(file: string, source: string): Promise<string[]> {
  fs.writeFileSync(file, source);
  const [result] = await eslint.lintFiles([file]);
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

before(() => fs.mkdirSync(probe, { recursive: true }));
after(() => fs.rmSync(probe, { recursive: true, force: true }));

test('an import cycle between two modules is refused', async () => {
  fs.writeFileSync(path.join(probe, 'b.ts'), "import { a } from './a.js';\nexport const b = () => a;\n");
  const ids = await ruleIds(path.join(probe, 'a.ts'), "import { b } from './b.js';\nexport const a = () => b;\n");
  assert.ok(ids.includes('import-x/no-cycle'), ids.join(', '));
});

test('a promise nobody awaits is refused', async () => {
  const ids = await ruleIds(
    path.join(probe, 'floating.ts'),
    'async function work(): Promise<void> {}\nexport function start(): void {\n  work();\n}\n',
  );
  assert.ok(ids.includes('@typescript-eslint/no-floating-promises'), ids.join(', '));
});

test('a store importing the API at run time is refused; a type-only import is allowed', async () => {
  const value = await ruleIds(
    path.join(probe, 'upward.ts'),
    "import { createApp } from '../../api/app.js';\nexport const app = createApp;\n",
  );
  assert.ok(value.includes('@typescript-eslint/no-restricted-imports'), value.join(', '));
  const typeOnly = await ruleIds(
    path.join(probe, 'upward-type.ts'),
    "import type { AppDeps } from '../../api/deps.js';\nexport type Deps = AppDeps;\n",
  );
  assert.deepEqual(typeOnly, []);
});

test('workflow code may not import Node built-ins or non-contract modules', async () => {
  const [result] = await eslint.lintText("import fs from 'node:fs';\nexport const x = fs;\n", {
    filePath: path.join(ROOT, 'workflows', 'scheduler.ts'),
  });
  assert.ok(
    result!.messages.some((m) => m.ruleId === '@typescript-eslint/no-restricted-imports'),
    JSON.stringify(result!.messages),
  );
});
