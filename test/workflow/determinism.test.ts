// Workflow code must stay deterministic: it may import only @temporalio/workflow, sibling workflow files, types,
// and constants from src/contracts modules that import nothing themselves (closed sets shared with the activities).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ROOT } from '../helpers/temporal.js';

const dir = path.join(ROOT, 'workflows');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));

/** A module of plain constants: no import or re-export of anything. */
const importsNothing = (file: string) => !/^(import|export)\s[^;]*?from\s+'/m.test(fs.readFileSync(file, 'utf8'));

test('workflows/ imports only @temporalio/workflow, sibling files, types, and dependency-free contracts', () => {
  assert.ok(files.length >= 3, 'workflow files found');
  for (const file of files) {
    const source = fs.readFileSync(path.join(dir, file), 'utf8');
    // every static import or re-export, with whether it is type-only
    for (const m of source.matchAll(/^(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)) {
      const [, , typeOnly, spec] = m;
      const contract = spec!.startsWith('../src/contracts/') && path.join(dir, spec!.replace(/\.js$/, '.ts'));
      const allowed =
        spec === '@temporalio/workflow' ||
        spec!.startsWith('./') ||
        Boolean(typeOnly) ||
        (contract !== false && importsNothing(contract));
      assert.ok(
        allowed,
        `${file} imports '${spec}' at run time; workflows may only import @temporalio/workflow, ./siblings, types, or dependency-free src/contracts modules`,
      );
    }
    assert.doesNotMatch(source, /\brequire\(|\bimport\(/, `${file} uses a dynamic import`);
  }
});

test('the workflow bundle builds (the worker bundler rejects Node built-ins)', async () => {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(dir, 'index.ts'),
    logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} },
  });
  assert.match(code, /batchWorkflow/);
  assert.match(code, /shardWorkflow/);
  for (const heavy of ['onnxruntime-node', 'zod', 'express', 'pino']) {
    assert.ok(!code.includes(`node_modules/${heavy}/`), `the workflow bundle pulls in ${heavy}`);
  }
});
