// Bundles workflows/ once at build time into dist/workflow-bundle.js, so workers start without webpack.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const workflowsPath = fileURLToPath(new URL('../dist/workflows/index.js', import.meta.url));
const out = fileURLToPath(new URL('../dist/workflow-bundle.js', import.meta.url));
const { code } = await bundleWorkflowCode({
  workflowsPath,
  logger: { info() {}, warn: console.warn, error: console.error, debug() {}, trace() {}, log() {} },
});
fs.writeFileSync(out, code);
console.log(`[build] workflow bundle: ${out} (${Math.round(code.length / 1024)} KiB)`);
