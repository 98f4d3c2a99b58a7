// The inference pool's run timeout, with real worker threads and a real ONNX model that does as much work as it is
// asked: `spin` loops its input M times (an ONNX Loop), so a large M keeps its thread inside onnxruntime's native
// code, as a hung model would. A run past its timeout fails with InferenceTimeoutError (retryable), so does every
// run that waited on that thread, and the pool carries on at its size with a new thread that has the model loaded.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { toActivityFailure } from '../../activities/permanent-failure.js';
import { InferenceTimeoutError } from '../../src/errors.js';
import { InferenceRuntime } from '../../src/runtime/inference.js';
import { InferencePool } from '../../src/runtime/inference-pool.js';
import type { WireTensor } from '../../src/runtime/inference-protocol.js';
import { ModelRepository } from '../../src/runtime/model-repository.js';
import { tempDir } from '../helpers/temporal.js';

/** How long a hung run keeps spinning: well past every timeout and every bound below. */
const HANG_MS = 4000;
const TIMEOUT_MS = 300;
/** How late past its timeout a hung run may reject: the pool's own event loop is free, so this is slack. */
const REJECT_WITHIN_MS = TIMEOUT_MS + 2000;
/**
 * The run after a timeout gets this long, counted once its new thread has loaded the model: far more than a small
 * run needs, and less than the hung run still spins for, so a run left queued behind it would time out instead.
 */
const NEXT_RUN_TIMEOUT_MS = 1500;

describe('the inference pool run timeout', () => {
  const root = tempDir('spin-model');
  const file = path.join(root, 'spin', '1', 'model.onnx');
  let hangTrips: number;

  before(async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, spinModel());
    hangTrips = await tripsFor(HANG_MS);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('a hung run and the run behind it fail as InferenceTimeout; a new thread runs the next', async () => {
    const pool = new InferencePool({ threads: 1, runTimeoutMs: 60_000 });
    try {
      await pool.load(file);
      const started = Date.now();

      const hung = pool.run(file, feeds(hangTrips, 0), TIMEOUT_MS);
      const queued = pool.run(file, feeds(3, 1)); // the pool's own 60 s timeout: it fails because its thread goes
      const outcomes = await Promise.allSettled([hung, queued]);

      const elapsed = Date.now() - started;
      for (const o of outcomes) {
        assert.equal(o.status, 'rejected');
        const err = (o as PromiseRejectedResult).reason;
        assert.ok(err instanceof InferenceTimeoutError, `an InferenceTimeoutError, got ${String(err)}`);
        assert.equal(err.name, 'InferenceTimeout');
        assert.equal(err.timeoutMs, TIMEOUT_MS);
        assert.match(err.message, /took longer than 300 ms; its inference thread was replaced/);
      }
      assert.ok(elapsed >= TIMEOUT_MS, `not before the timeout (${elapsed} ms)`);
      assert.ok(elapsed < REJECT_WITHIN_MS, `rejected ${elapsed} ms after the start, bound ${REJECT_WITHIN_MS} ms`);
      assert.equal(pool.size, 1, 'the pool keeps its size');

      const [y] = await pool.run(file, feeds(3, 1), NEXT_RUN_TIMEOUT_MS);

      assert.deepEqual(Array.from(y!.data as Float32Array), [8]); // 1 doubled 3 times
    } finally {
      await pool.close();
    }
  });

  test("config.json's runTimeoutMs bounds the model's runs through the runtime; the failure is retryable", async () => {
    fs.writeFileSync(
      path.join(root, 'spin', 'config.json'),
      JSON.stringify({
        name: 'spin',
        runTimeoutMs: TIMEOUT_MS,
        inputs: [
          { name: 'M', dtype: 'int64', shape: [] },
          { name: 'x', dtype: 'float32', shape: [1] },
        ],
        outputs: [{ name: 'y', dtype: 'float32', shape: [1] }],
      }),
    );
    const runtime = new InferenceRuntime(new ModelRepository(root), { threads: 1, runTimeoutMs: 60_000 });
    try {
      const started = Date.now();

      const err = await runtime.infer('spin', undefined, { M: hangTrips, x: [0] }).then(
        () => assert.fail('the hung item succeeded'),
        (e: unknown) => e,
      );

      const elapsed = Date.now() - started;
      assert.ok(err instanceof InferenceTimeoutError, `an InferenceTimeoutError, got ${String(err)}`);
      assert.equal(err.timeoutMs, TIMEOUT_MS, "the model's runTimeoutMs, not the pool's 60 s");
      assert.ok(elapsed < REJECT_WITHIN_MS + 5000, `rejected after ${elapsed} ms (model load included)`);
      const failure = toActivityFailure(err);
      assert.equal(failure.type, 'InferenceTimeout');
      assert.notEqual(failure.nonRetryable, true, 'retried by the activity');
      assert.equal(runtime.pool.size, 1);

      const result = await runtime.infer('spin', undefined, { M: 2, x: [1.5] });

      assert.deepEqual(result.outputs.y, [6]);
    } finally {
      await runtime.close();
    }
  });

  /** Loop trips that take about `ms` on this machine, measured on a pool of its own. */
  async function tripsFor(ms: number): Promise<number> {
    const pool = new InferencePool({ threads: 1 });
    try {
      await pool.load(file);
      const probe = 200_000;
      const started = process.hrtime.bigint();
      await pool.run(file, feeds(probe, 0));
      const perTripMs = Number(process.hrtime.bigint() - started) / 1e6 / probe;
      return Math.ceil(ms / Math.max(perTripMs, 1e-6));
    } finally {
      await pool.close();
    }
  }
});

/** The spin model's feeds for one item: loop `trips` times over x, doubling it each time. */
function feeds(trips: number, x: number): WireTensor[] {
  return [
    { name: 'M', dtype: 'int64', data: BigInt64Array.of(BigInt(trips)), dims: [1] },
    { name: 'x', dtype: 'float32', data: Float32Array.of(x), dims: [1, 1] },
  ];
}

/**
 * `spin` as ONNX bytes: y = Loop(ReduceMax(M), x), whose body doubles x. M is int64 [batch], x and y float32
 * [batch, 1]. Written with a minimal protobuf encoder (field numbers from onnx.proto), so the test needs no Python.
 */
function spinModel(): Uint8Array {
  const varint = (n: number): number[] => {
    const out: number[] = [];
    let v = n;
    do {
      out.push((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
      v = Math.floor(v / 128);
    } while (v > 0);
    return out;
  };
  const int = (field: number, n: number) => [...varint(field << 3), ...varint(n)];
  const bytes = (field: number, b: number[]) => [...varint((field << 3) | 2), ...varint(b.length), ...b];
  const str = (field: number, s: string) => bytes(field, [...Buffer.from(s)]);
  const msg = (field: number, ...parts: number[][]) => bytes(field, parts.flat());
  const [FLOAT, INT64, BOOL] = [1, 7, 9]; // TensorProto.DataType
  const [ATTR_INT, ATTR_GRAPH] = [2, 5]; // AttributeProto.AttributeType
  // ValueInfoProto { name = 1; type = 2 { tensor_type = 1 { elem_type = 1; shape = 2 { dim = 1 {
  //   dim_value = 1 | dim_param = 2 } } } } }
  const value = (field: number, name: string, elem: number, dims: (number | string)[]) =>
    msg(
      field,
      str(1, name),
      msg(2, msg(1, int(1, elem), msg(2, ...dims.map((d) => msg(1, typeof d === 'number' ? int(1, d) : str(2, d)))))),
    );
  // NodeProto { input = 1; output = 2; op_type = 4; attribute = 5 }, in GraphProto.node = 1
  const node = (op: string, inputs: string[], outputs: string[], ...attributes: number[][]) =>
    msg(1, ...inputs.map((i) => str(1, i)), ...outputs.map((o) => str(2, o)), str(4, op), ...attributes);
  // GraphProto { node = 1; name = 2; input = 11; output = 12 }
  const body = [
    node('Identity', ['cond_in'], ['cond_out']),
    node('Add', ['x_in', 'x_in'], ['x_out']),
    str(2, 'body'),
    value(11, 'i', INT64, []),
    value(11, 'cond_in', BOOL, []),
    value(11, 'x_in', FLOAT, ['batch', 1]),
    value(12, 'cond_out', BOOL, []),
    value(12, 'x_out', FLOAT, ['batch', 1]),
  ].flat();
  // AttributeProto { name = 1; i = 3; g = 6; type = 20 }
  const graph = [
    node('ReduceMax', ['M'], ['trips'], msg(5, str(1, 'keepdims'), int(3, 0), int(20, ATTR_INT))),
    node('Loop', ['trips', '', 'x'], ['y'], msg(5, str(1, 'body'), bytes(6, body), int(20, ATTR_GRAPH))),
    str(2, 'spin'),
    value(11, 'M', INT64, ['batch']),
    value(11, 'x', FLOAT, ['batch', 1]),
    value(12, 'y', FLOAT, ['batch', 1]),
  ];
  // ModelProto { ir_version = 1; graph = 7; opset_import = 8 { domain = 1; version = 2 } }
  return new Uint8Array([...int(1, 8), ...msg(8, str(1, ''), int(2, 13)), ...msg(7, ...graph)]);
}
