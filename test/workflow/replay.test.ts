// Determinism guard: histories recorded from real runs (test/histories/*.json, see record.ts there) must replay
// against today's workflow code. A failure here means a change would break batches already running: use
// patching (patched()/deprecatePatch()) instead of changing what an existing history did.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { ROOT, quietTemporalLogs, workflowBundle } from '../helpers/temporal.js';

const dir = path.join(ROOT, 'test', 'histories');
const ids = JSON.parse(fs.readFileSync(path.join(dir, 'workflow-ids.json'), 'utf8')) as Record<string, string>;
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'workflow-ids.json');

test('recorded histories exist for each scenario', () => {
  for (const name of [
    'normal',
    'retries-and-failures',
    'messages',
    'canceled-by-temporal',
    'canceled-by-signal',
    'chunked',
    'sharded',
    'sharded-shard-0',
    'webhooks-webhooks',
    'predict',
    'predict-local-activity',
    'predict-late',
    'predict-deadline-cancel',
    'local-items',
    'dead-letters',
    'first-task-ramp',
    'local-sharded',
    'local-sharded-shard-0',
  ]) {
    assert.ok(files.includes(`${name}.json`), `test/histories/${name}.json`);
  }
});

for (const file of files) {
  test(`replays ${file} without nondeterminism`, async () => {
    quietTemporalLogs();
    const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')));
    assert.ok(history.events!.length >= 5, 'a real history (a task dropped at its deadline has 5 events)');
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, ids[file] ?? `replay-${file}`);
  });
}
