// Triton's official Python HTTP client (tritonclient, unchanged, from the pinned Python tools venv) against /v2 on
// the real dev server and real models: readiness, metadata, the model configuration, statistics and repository
// index extensions, and infer as JSON and with binary tensor data, on digits (one row and a batch) and on the text
// embedding model, plus the asyncio client once (it sends application/octet-stream). The Python side
// (triton_client_check.py) prints a JSON summary that this file asserts on.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pythonTools } from '../../scripts/python-tools.mjs';
import { heldout } from '../helpers/data.js';
import { ROOT } from '../helpers/temporal.js';
import { ACME, startOnlineStack, type OnlineStack } from './online-stack.js';

const SCRIPT = path.join(ROOT, 'test', 'e2e', 'triton_client_check.py');
/** How long the Python side may take: a few dozen requests, the first ones loading the models. */
const SCRIPT_TIMEOUT_MS = 180_000;

const rows = heldout('digits').slice(40, 43);
const texts = ['A man is eating food.', 'The new movie is awesome.'];

/** Runs the script with `task` on stdin; resolves with its summary, rejects with its stderr when it fails. */
async function runCheck(python: string, task: unknown): Promise<Record<string, any>> {
  const child = spawn(python, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], timeout: SCRIPT_TIMEOUT_MS });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(JSON.stringify(task));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`triton_client_check.py exited ${code}:\n${stderr}`);
  return JSON.parse(stdout);
}

describe("Triton's Python HTTP client against /v2 on a real Temporal dev server", () => {
  let s: OnlineStack;
  let summary: Record<string, any>;

  before(async () => {
    const { python } = await pythonTools();
    s = await startOnlineStack();
    summary = await runCheck(python, {
      url: new URL(s.api.url).host,
      key: ACME,
      digits: rows.map((r) => r.inputs.input),
      texts,
    });
  });

  after(async () => {
    await s?.close();
  });

  test('readiness and metadata read as the client expects, naming the extensions served', () => {
    assert.equal(summary.serverLive, true);
    assert.equal(summary.serverReady, true);
    assert.equal(summary.modelReady, true);
    assert.equal(summary.versionReady, true);
    assert.deepEqual(summary.serverMetadata.extensions, ['binary_tensor_data', 'model_configuration', 'statistics']);
    assert.equal(summary.modelMetadata.platform, 'onnxruntime_onnx');
  });

  test('get_model_config: a Triton model configuration built from config.json', () => {
    for (const config of [summary.modelConfig, summary.versionConfig]) {
      assert.equal(config.name, 'digits');
      assert.equal(config.platform, 'onnxruntime_onnx');
      assert.equal(config.max_batch_size, 128);
      assert.deepEqual(config.input, [{ name: 'input', data_type: 'TYPE_FP32', dims: [64] }]);
      assert.deepEqual(config.output, [
        { name: 'label', data_type: 'TYPE_INT64', dims: [1], reshape: { shape: [] } },
        { name: 'probabilities', data_type: 'TYPE_FP32', dims: [10] },
      ]);
      assert.deepEqual(config.dynamic_batching, { preferred_batch_size: [], max_queue_delay_microseconds: 0 });
    }
  });

  test('get_model_repository_index: every model version, READY', () => {
    const entries = summary.index as { name: string; version: string; state: string }[];
    for (const name of ['all-minilm-l6-v2', 'breast-cancer', 'digits']) {
      assert.deepEqual(
        entries.filter((e) => e.name === name).map((e) => [e.version, e.state]),
        [['1', 'READY']],
        name,
      );
    }
  });

  test('infer on digits gives the held-out labels as JSON and with binary data, one row and a batch', () => {
    const expected = rows.map((r) => r.expected.label);
    assert.deepEqual(summary.digits, {
      json1: expected.slice(0, 1),
      binary1: expected.slice(0, 1),
      json3: expected,
      binary3: expected,
      allOutputs: expected.slice(0, 2),
    });
    // FP32 sent as JSON numbers and as bytes are the same floats: the probabilities agree to float32 rounding.
    assert.ok(summary.digitsProbabilityDiff < 1e-6, `probabilities differ by ${summary.digitsProbabilityDiff}`);
  });

  test('infer on the text embedding model with BYTES inputs, as JSON and binary: unit vectors that agree', () => {
    assert.equal(summary.text.norms.length, texts.length);
    for (const norm of summary.text.norms) assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
    assert.ok(summary.text.maxDiff < 1e-5, `JSON and binary embeddings differ by ${summary.text.maxDiff}`);
  });

  test('the asyncio client (application/octet-stream) infers with binary data', () => {
    assert.deepEqual(summary.aio, { labels: rows.map((r) => r.expected.label), modelReady: true });
  });

  test('get_inference_statistics counts the rows and requests this API process served', () => {
    const [stat] = summary.modelStats.model_stats;
    assert.deepEqual(summary.versionStats, summary.modelStats);
    assert.equal(stat.name, 'digits');
    assert.equal(stat.version, '1');
    assert.equal(stat.inference_count, summary.rows.digits);
    assert.equal(stat.execution_count, summary.requests.digits);
    const { success, fail, compute_input, compute_infer, compute_output } = stat.inference_stats;
    assert.equal(success.count, summary.requests.digits);
    assert.equal(fail.count, 0);
    for (const d of [compute_input, compute_infer, compute_output]) assert.equal(d.count, success.count);
    assert.ok(compute_infer.ns > 0 && compute_infer.ns <= success.ns);
    assert.ok(stat.last_inference > 0);
    const all = summary.allStats.model_stats as { name: string; inference_count: number }[];
    assert.deepEqual(
      all.map((m) => [m.name, m.inference_count]),
      [
        ['all-minilm-l6-v2', summary.rows['all-minilm-l6-v2']],
        ['breast-cancer', 0],
        ['digits', summary.rows.digits],
      ],
    );
  });
});
