import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InvalidInputError, ModelLoadError, NotFoundError } from '../../src/errors.js';
import { InferenceRuntime } from '../../src/runtime/inference.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';

const MODELS = fileURLToPath(new URL('../../models', import.meta.url));
const DIGITS_ONNX = path.join(MODELS, 'digits', '1', 'model.onnx');
const DIGITS_CONFIG = path.join(MODELS, 'digits', 'config.json');

/** The first held-out digits row (sklearn predicts '8' for it). */
function digitsRow(): number[] {
  const line = fs.readFileSync(path.join(MODELS, 'digits', 'testdata', 'heldout.jsonl'), 'utf8').split('\n')[0]!;
  return (JSON.parse(line) as { inputs: { input: number[] } }).inputs.input;
}

/** An empty model repository in a temp dir, removed when the test ends. */
function tempRepo(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-repo-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Copies the digits ONNX file in as `<root>/<name>/<version>/model.onnx`. */
function addVersion(root: string, name: string, version: number, source = DIGITS_ONNX): string {
  const file = path.join(root, name, String(version), 'model.onnx');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.copyFileSync(source, file);
  return file;
}

/** Writes bytes that are not an ONNX model as `<root>/<name>/1/model.onnx`. */
function addCorruptVersion(root: string, name: string, content: string | Buffer = 'garbage'): string {
  const file = path.join(root, name, '1', 'model.onnx');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

/** Writes `<root>/<name>/config.json`: the digits config, renamed, with `patch` applied. */
function writeConfig(root: string, name: string, patch: (c: any) => void = () => {}): string {
  const config = JSON.parse(fs.readFileSync(DIGITS_CONFIG, 'utf8'));
  config.name = name;
  patch(config);
  const file = path.join(root, name, 'config.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail('expected a rejection'),
    (err: unknown) => err,
  );
}

describe('ModelRepository', () => {
  test('names() lists the bundled models and skips directories without versions', async () => {
    const names = await new ModelRepository(MODELS).names();

    assert.ok(names.includes('digits'), names.join(', '));
    assert.ok(names.includes('breast-cancer'), names.join(', '));
    assert.ok(!names.includes('train'), 'models/train has no version directory');
    assert.deepEqual(names, [...names].sort());
  });

  test('resolve(digits) gives version 1, an absolute model file and the version list', async () => {
    const resolved = await new ModelRepository(MODELS).resolve('digits');

    assert.equal(resolved.name, 'digits');
    assert.equal(resolved.version, 1);
    assert.ok(path.isAbsolute(resolved.file), resolved.file);
    assert.equal(resolved.file, DIGITS_ONNX);
    assert.deepEqual(resolved.versions, [1]);
    assert.equal(resolved.config.name, 'digits');
    assert.deepEqual(resolved.config.inputs, [{ name: 'input', dtype: 'float32', shape: [64] }]);
  });

  test('the latest version is used by default, and a pinned one when asked', async (t) => {
    const root = tempRepo(t);
    writeConfig(root, 'digits');
    const v1 = addVersion(root, 'digits', 1);
    const v2 = addVersion(root, 'digits', 2);
    const repo = new ModelRepository(root);

    const latest = await repo.resolve('digits');
    const pinned = await repo.resolve('digits', 1);

    assert.equal(latest.version, 2);
    assert.equal(latest.file, v2);
    assert.deepEqual(latest.versions, [1, 2]);
    assert.equal(pinned.version, 1);
    assert.equal(pinned.file, v1);
  });

  test('versions are ordered numerically (10 is later than 2)', async (t) => {
    const root = tempRepo(t);
    writeConfig(root, 'digits');
    addVersion(root, 'digits', 2);
    addVersion(root, 'digits', 10);

    const resolved = await new ModelRepository(root).resolve('digits');

    assert.equal(resolved.version, 10);
    assert.deepEqual(resolved.versions, [2, 10]);
  });

  test('version directories without model.onnx, or not named as positive integers, are ignored', async (t) => {
    const root = tempRepo(t);
    writeConfig(root, 'digits');
    addVersion(root, 'digits', 1);
    fs.mkdirSync(path.join(root, 'digits', '3'));
    fs.mkdirSync(path.join(root, 'digits', '0'));
    fs.copyFileSync(DIGITS_ONNX, path.join(root, 'digits', '0', 'model.onnx'));

    const resolved = await new ModelRepository(root).resolve('digits');

    assert.deepEqual(resolved.versions, [1]);
  });

  test('an unknown model throws NotFoundError naming the model', async () => {
    const err = await rejection(new ModelRepository(MODELS).resolve('no-such-model'));

    assert.ok(err instanceof NotFoundError, String(err));
    assert.equal(err.status, 404);
    assert.match(err.message, /model 'no-such-model' not found/);
  });

  test('a name that could escape the repository is not found', async () => {
    const err = await rejection(new ModelRepository(path.join(MODELS, 'digits')).resolve('../digits'));

    assert.ok(err instanceof NotFoundError, String(err));
    assert.match(err.message, /model '\.\.\/digits' not found/);
  });

  test('an unknown version throws NotFoundError naming the version and the versions on disk', async () => {
    const err = await rejection(new ModelRepository(MODELS).resolve('digits', 7));

    assert.ok(err instanceof NotFoundError, String(err));
    assert.match(err.message, /model 'digits' has no version 7 \(versions: 1\)/);
  });

  test('a config.json with a schema error throws ModelLoadError naming the file and the field', async (t) => {
    const root = tempRepo(t);
    const configFile = writeConfig(root, 'digits', (c) => {
      c.inputs[0].dtype = 'float17';
    });
    addVersion(root, 'digits', 1);

    const err = await rejection(new ModelRepository(root).resolve('digits'));

    assert.ok(err instanceof ModelLoadError, String(err));
    assert.equal(err.file, configFile);
    assert.ok(err.message.includes(configFile), err.message);
    assert.match(err.message, /inputs\.0\.dtype/);
  });

  test('a preferred batch size larger than maxBatchSize is refused, naming the field', async (t) => {
    const root = tempRepo(t);
    writeConfig(root, 'digits', (c) => {
      c.maxBatchSize = 32;
      c.dynamicBatching = { maxQueueDelayMs: 0, preferredBatchSizes: [16, 64] };
    });
    addVersion(root, 'digits', 1);

    const err = await rejection(new ModelRepository(root).resolve('digits'));

    assert.ok(err instanceof ModelLoadError, String(err));
    assert.match(err.message, /dynamicBatching\.preferredBatchSizes\.1/);
    assert.match(err.message, /preferred batch size 64 is larger than maxBatchSize \(32\)/);
  });

  test('a config.json that is not valid JSON throws ModelLoadError naming the file', async (t) => {
    const root = tempRepo(t);
    const configFile = path.join(root, 'digits', 'config.json');
    addVersion(root, 'digits', 1);
    fs.writeFileSync(configFile, '{"name": "digits",');

    const err = await rejection(new ModelRepository(root).resolve('digits'));

    assert.ok(err instanceof ModelLoadError, String(err));
    assert.ok(err.message.includes(configFile), err.message);
    assert.match(err.message, /not valid JSON/);
  });

  test('a config.json whose name differs from its directory throws ModelLoadError', async (t) => {
    const root = tempRepo(t);
    const configFile = writeConfig(root, 'digits', (c) => {
      c.name = 'numbers';
    });
    addVersion(root, 'digits', 1);

    const err = await rejection(new ModelRepository(root).resolve('digits'));

    assert.ok(err instanceof ModelLoadError, String(err));
    assert.ok(err.message.includes(configFile), err.message);
    assert.match(err.message, /name 'numbers' does not match its directory 'digits'/);
  });

  test('an edited config.json is read again once the resolution cache expires, not before', async (t) => {
    const root = tempRepo(t);
    const configFile = writeConfig(root, 'digits', (c) => {
      c.description = 'first';
    });
    addVersion(root, 'digits', 1);
    const cached = new ModelRepository(root, 60_000);
    const uncached = new ModelRepository(root, 0);
    assert.equal((await cached.resolve('digits')).config.description, 'first');
    assert.equal((await uncached.resolve('digits')).config.description, 'first');

    writeConfig(root, 'digits', (c) => {
      c.description = 'second';
    });
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(configFile, later, later);

    assert.equal((await uncached.resolve('digits')).config.description, 'second');
    assert.equal((await cached.resolve('digits')).config.description, 'first', 'within the TTL: no disk read');
  });

  test('a model without config.json gets its signature from the ONNX file, batch dimension dropped', async (t) => {
    const root = tempRepo(t);
    addVersion(root, 'bare', 1);

    const resolved = await new ModelRepository(root).resolve('bare');

    assert.equal(resolved.config.name, 'bare');
    assert.deepEqual(resolved.config.inputs, [{ name: 'input', dtype: 'float32', shape: [64] }]);
    assert.deepEqual(resolved.config.outputs, [
      { name: 'label', dtype: 'int64', shape: [] },
      { name: 'probabilities', dtype: 'float32', shape: [10] },
    ]);
    assert.equal(resolved.config.postprocess, undefined);
  });

  test('a model without config.json and with a corrupt ONNX file throws ModelLoadError naming the file', async (t) => {
    const root = tempRepo(t);
    const file = addCorruptVersion(root, 'bare', 'not an onnx model');

    const err = await rejection(new ModelRepository(root).resolve('bare'));

    assert.ok(err instanceof ModelLoadError, String(err));
    assert.equal(err.file, file);
  });
});

describe('InferenceRuntime', () => {
  test('a corrupt model file rejects with ModelLoadError, and the runtime keeps serving good models', async (t) => {
    const root = tempRepo(t);
    writeConfig(root, 'digits');
    addVersion(root, 'digits', 1);
    writeConfig(root, 'broken');
    const brokenFile = addCorruptVersion(root, 'broken', Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x13, 0x37, 0xff]));
    const runtime = new InferenceRuntime(new ModelRepository(root));
    t.after(() => runtime.close());

    const err = await rejection(runtime.infer('broken', undefined, { input: digitsRow() }));
    const good = await runtime.infer('digits', undefined, { input: digitsRow() });

    assert.ok(err instanceof ModelLoadError, String(err));
    assert.equal(err.file, brokenFile);
    assert.ok(err.message.includes(brokenFile), err.message);
    assert.equal(good.label, '8');
  });

  test('preload loads every model at start and names the ones that fail; a loaded model then runs without a load', async (t) => {
    const root = tempRepo(t);
    writeConfig(root, 'digits');
    addVersion(root, 'digits', 1);
    writeConfig(root, 'broken');
    const brokenFile = addCorruptVersion(root, 'broken');
    const runtime = new InferenceRuntime(new ModelRepository(root));
    t.after(() => runtime.close());
    let loads = 0;
    const load = runtime.pool.load.bind(runtime.pool);
    runtime.pool.load = (file) => {
      loads++;
      return load(file);
    };

    const failed = await runtime.preload();

    assert.deepEqual(
      failed.map((f) => f.model),
      ['broken'],
    );
    assert.ok(failed[0]!.error.includes(brokenFile), failed[0]!.error);
    assert.equal(loads, 2, 'both models were loaded (one failed)');
    assert.equal((await runtime.infer('digits', undefined, { input: digitsRow() })).label, '8');
    assert.equal(loads, 2, 'the preloaded model was not loaded again');
  });

  test('a model file that failed to load is tried again on the next request', async (t) => {
    const root = tempRepo(t);
    writeConfig(root, 'flaky');
    const file = addCorruptVersion(root, 'flaky');
    const runtime = new InferenceRuntime(new ModelRepository(root));
    t.after(() => runtime.close());
    assert.ok((await rejection(runtime.infer('flaky', undefined, { input: digitsRow() }))) instanceof ModelLoadError);

    fs.copyFileSync(DIGITS_ONNX, file);
    const result = await runtime.infer('flaky', undefined, { input: digitsRow() });

    assert.equal(result.label, '8');
  });

  test('infer on digits returns model, version, label and 10 probabilities summing to 1', async (t) => {
    const runtime = new InferenceRuntime(new ModelRepository(MODELS));
    t.after(() => runtime.close());

    const result = await runtime.infer('digits', undefined, { input: digitsRow() });

    assert.equal(result.model, 'digits');
    assert.equal(result.version, 1);
    assert.equal(result.label, '8');
    assert.ok(Array.isArray(result.probabilities));
    assert.equal(result.probabilities!.length, 10);
    const sum = result.probabilities!.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
    const best = result.probabilities!.indexOf(Math.max(...result.probabilities!));
    assert.equal(result.label, String(best));
  });

  test("a classifier's result always carries label, for every bundled classifier and any input", async (t) => {
    const runtime = new InferenceRuntime(new ModelRepository(MODELS));
    t.after(() => runtime.close());

    const results = await Promise.all([
      runtime.infer('digits', undefined, { input: new Array<number>(64).fill(0) }),
      runtime.infer('digits', 1, { input: new Array<number>(64).fill(16) }),
      runtime.infer('breast-cancer', undefined, { input: new Array<number>(30).fill(0) }),
      runtime.infer('breast-cancer', undefined, { input: new Array<number>(30).fill(1000) }),
    ]);

    for (const r of results) {
      assert.equal(typeof r.label, 'string', JSON.stringify(r));
      assert.ok(r.label!.length > 0);
    }
    assert.ok(['malignant', 'benign'].includes(results[2]!.label!), results[2]!.label);
  });

  test('outputs does not duplicate the probabilities output', async (t) => {
    const runtime = new InferenceRuntime(new ModelRepository(MODELS));
    t.after(() => runtime.close());

    const result = await runtime.infer('digits', undefined, { input: digitsRow() });

    assert.ok(!('probabilities' in result.outputs), JSON.stringify(result.outputs));
    assert.deepEqual(Object.keys(result.outputs), ['label']);
    assert.equal(result.outputs.label, 8);
  });

  test('a model served from its ONNX signature alone returns its raw outputs, without label', async (t) => {
    const root = tempRepo(t);
    addVersion(root, 'bare', 1);
    const runtime = new InferenceRuntime(new ModelRepository(root));
    t.after(() => runtime.close());

    const result = await runtime.infer('bare', undefined, { input: digitsRow() });

    assert.equal(result.label, undefined);
    assert.equal(result.outputs.label, 8);
    assert.equal((result.outputs.probabilities as number[]).length, 10);
  });

  test('a config.json whose input shape disagrees with the ONNX model rejects with ModelLoadError naming the file', async (t) => {
    const root = tempRepo(t);
    writeConfig(root, 'misshaped', (c) => {
      c.inputs[0].shape = [32]; // the ONNX model takes 64 features
    });
    const file = addVersion(root, 'misshaped', 1);
    const runtime = new InferenceRuntime(new ModelRepository(root));
    t.after(() => runtime.close());

    const err = await rejection(runtime.infer('misshaped', undefined, { input: new Array<number>(32).fill(1) }));

    // a permanent misconfiguration: must be a ModelLoadError (non-retryable in the activity), not a plain Error
    assert.ok(
      err instanceof ModelLoadError,
      `expected ModelLoadError, got ${(err as Error).name}: ${(err as Error).message}`,
    );
    assert.equal(err.file, file);
  });

  test('a config.json naming a scores output the ONNX model lacks is refused, not answered with a made-up label', async (t) => {
    const root = tempRepo(t);
    writeConfig(root, 'renamed', (c) => {
      c.outputs[1].name = 'scores'; // the ONNX model's output is called 'probabilities'
      c.postprocess.scores = 'scores';
    });
    const file = addVersion(root, 'renamed', 1);
    const runtime = new InferenceRuntime(new ModelRepository(root));
    t.after(() => runtime.close());

    const outcome = await runtime.infer('renamed', undefined, { input: digitsRow() }).then(
      (result) => result,
      (err: unknown) => err,
    );

    assert.ok(outcome instanceof ModelLoadError, `expected ModelLoadError, got result ${JSON.stringify(outcome)}`);
    assert.equal(outcome.file, file);
    assert.match(outcome.message, /scores/);
  });

  test('invalid inputs are rejected with InvalidInputError before anything runs', async (t) => {
    const runtime = new InferenceRuntime(new ModelRepository(MODELS));
    t.after(() => runtime.close());

    const err = await rejection(runtime.infer('digits', undefined, { input: [1, 2, 3] }));

    assert.ok(err instanceof InvalidInputError, String(err));
    assert.match(err.message, /input 'input'/);
  });
});
