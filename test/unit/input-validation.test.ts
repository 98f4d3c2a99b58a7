import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidInputError } from '../../src/errors.js';
import { MAX_ELEMENTS_PER_INPUT, validateItemInputs } from '../../src/runtime/input-validation.js';
import { ModelConfig, type TensorDtype } from '../../src/runtime/model-config.js';

/** A one-input model whose input is called `input`. */
function model(dtype: TensorDtype, shape: number[], name = 'm'): ModelConfig {
  return ModelConfig.parse({
    name,
    inputs: [{ name: 'input', dtype, shape }],
    outputs: [{ name: 'out', dtype: 'float32', shape: [1] }],
  });
}

const digitsLike = model('float32', [64], 'digits');
const grid = model('float32', [8, 8]);
const ints = model('int64', [3]);
const rows = model('float32', [-1, 4]);
const scalar = model('float32', []);
const twoInputs = ModelConfig.parse({
  name: 'pair',
  inputs: [
    { name: 'a', dtype: 'float32', shape: [2] },
    { name: 'b', dtype: 'int32', shape: [2] },
  ],
  outputs: [{ name: 'out', dtype: 'float32', shape: [1] }],
});

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

/** Asserts validateItemInputs throws an InvalidInputError whose single detail is about `name` and matches `re`. */
function rejects(config: ModelConfig, inputs: Record<string, unknown>, name: string, re: RegExp): InvalidInputError {
  let caught: unknown;
  try {
    validateItemInputs(config, inputs);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InvalidInputError, `expected an InvalidInputError, got ${String(caught)}`);
  assert.equal(caught.code, 'invalid_request');
  assert.equal(caught.status, 400);
  assert.ok(caught.details, 'details present');
  assert.equal(caught.details.length, 1, caught.message);
  assert.deepEqual(caught.details[0]!.path, ['inputs', name]);
  assert.match(caught.details[0]!.message, re);
  assert.match(caught.message, re);
  return caught;
}

describe('validateItemInputs: accepted forms', () => {
  test('a flat array for a rank-1 input is accepted as is', () => {
    const values = range(64);

    const tensors = validateItemInputs(digitsLike, { input: values });

    assert.deepEqual(tensors.input, { data: values, dims: [64] });
  });

  test('a nested array of the item shape is flattened row-major and its dims reported', () => {
    const nested = range(8).map((r) => range(8, r * 8));

    const tensors = validateItemInputs(grid, { input: nested });

    assert.deepEqual(tensors.input!.dims, [8, 8]);
    assert.deepEqual(tensors.input!.data, range(64));
  });

  test('a flat array of 64 values is accepted for a rank-2 [8, 8] input', () => {
    const tensors = validateItemInputs(grid, { input: range(64) });

    assert.deepEqual(tensors.input!.dims, [8, 8]);
    assert.deepEqual(tensors.input!.data, range(64));
  });

  test('a dynamic dimension is derived from a flat array ([-1, 4] with 12 values gives [3, 4])', () => {
    const tensors = validateItemInputs(rows, { input: range(12) });

    assert.deepEqual(tensors.input!.dims, [3, 4]);
    assert.equal(tensors.input!.data.length, 12);
  });

  test('a dynamic dimension is taken from the nested form', () => {
    const tensors = validateItemInputs(rows, { input: [range(4), range(4, 4)] });

    assert.deepEqual(tensors.input!.dims, [2, 4]);
    assert.deepEqual(tensors.input!.data, range(8));
  });

  test('a scalar input takes a bare number or a one-element array', () => {
    assert.deepEqual(validateItemInputs(scalar, { input: 2.5 }).input, { data: [2.5], dims: [] });
    assert.deepEqual(validateItemInputs(scalar, { input: [2.5] }).input, { data: [2.5], dims: [] });
  });

  test('integers inside the dtype range are accepted for int inputs', () => {
    const int8 = model('int8', [2]);
    const uint8 = model('uint8', [2]);
    const int64 = model('int64', [2]);

    assert.deepEqual(validateItemInputs(int8, { input: [-128, 127] }).input!.data, [-128, 127]);
    assert.deepEqual(validateItemInputs(uint8, { input: [0, 255] }).input!.data, [0, 255]);
    assert.deepEqual(
      validateItemInputs(int64, { input: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] }).input!.data,
      [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    );
  });

  test('float32 inputs take values up to the largest finite float32, and those that round to it', () => {
    const largest = 3.4028234663852886e38; // the largest finite float32, exactly
    const values = [largest, -largest, 3.4028235e38, 1e-50, ...range(60)];

    const tensors = validateItemInputs(digitsLike, { input: values });

    assert.deepEqual(tensors.input!.data, values);
  });

  test('float64 inputs take values beyond the float32 range', () => {
    const tensors = validateItemInputs(model('float64', [2]), { input: [1e39, -1e300] });

    assert.deepEqual(tensors.input!.data, [1e39, -1e300]);
  });

  test('bool inputs take booleans and 0/1', () => {
    const flags = model('bool', [4]);

    const tensors = validateItemInputs(flags, { input: [true, false, 0, 1] });

    assert.deepEqual(tensors.input!.data, [true, false, 0, 1]);
  });

  test(`exactly MAX_ELEMENTS_PER_INPUT (${MAX_ELEMENTS_PER_INPUT}) elements are accepted`, () => {
    const tensors = validateItemInputs(model('float32', [-1]), {
      input: new Array<number>(MAX_ELEMENTS_PER_INPUT).fill(0),
    });

    assert.deepEqual(tensors.input!.dims, [MAX_ELEMENTS_PER_INPUT]);
  });
});

describe('validateItemInputs: rejected inputs', () => {
  test('a wrong count in a rank-1 input names the input, what was expected and what came', () => {
    rejects(
      digitsLike,
      { input: range(63) },
      'input',
      /input 'input'.*dimension 0 is 63, expected 64.*float32, shape \[64\]/,
    );
  });

  test('a wrong count in the flat form of a rank-2 input names expected and received counts', () => {
    rejects(grid, { input: range(63) }, 'input', /input 'input'.*expected 64 values.*shape \[8, 8\].*got 63/);
  });

  test('a fixed dimension mismatch in the nested form names the dimension and both shapes', () => {
    const sevenBySix = range(7).map(() => range(6));

    rejects(grid, { input: sevenBySix }, 'input', /dimension 0 is 7, expected 8.*got shape \[7, 6\]/);
  });

  test('a dimension mismatch on the inner dimension is reported for that dimension', () => {
    const eightBySix = range(8).map(() => range(6));

    rejects(grid, { input: eightBySix }, 'input', /dimension 1 is 6, expected 8/);
  });

  test('a ragged array with rows of different lengths is rejected', () => {
    rejects(model('float32', [2, 2]), { input: [[1, 2], [3]] }, 'input', /ragged array/);
  });

  test('an array mixing values and arrays is rejected ([1, [2]] and [[1], 2])', () => {
    const twoByOne = model('float32', [2, 1]);

    rejects(twoByOne, { input: [1, [2]] }, 'input', /ragged array: mixes values and arrays/);
    rejects(twoByOne, { input: [[1], 2] }, 'input', /ragged array: mixes values and arrays/);
  });

  test('an array mixing values and arrays in a rank-1 input is rejected', () => {
    rejects(model('float32', [2]), { input: [1, [2]] }, 'input', /nested deeper than the input's rank 1/);
  });

  test('an array nested deeper than the rank is rejected', () => {
    rejects(digitsLike, { input: [range(64)] }, 'input', /nested deeper than the input's rank 1/);
    rejects(grid, { input: [[[1]]] }, 'input', /nested deeper than the input's rank 2/);
  });

  test('an array nested between flat and full depth is rejected (rank 3, two levels)', () => {
    const cube = model('float32', [2, 2, 2]);

    rejects(cube, { input: [range(4), range(4)] }, 'input', /nested 2 levels deep; send 3 levels or one flat array/);
  });

  test('Infinity from JSON (1e400) is rejected as not finite', () => {
    const body = JSON.parse(`{"input": [${range(63).join(',')}, 1e400]}`) as Record<string, unknown>;
    assert.equal((body.input as number[])[63], Infinity); // the path under test: JSON overflow gives Infinity

    rejects(digitsLike, body, 'input', /element 63 is not finite/);
  });

  test('NaN and -Infinity are rejected as not finite', () => {
    rejects(digitsLike, { input: [NaN, ...range(63)] }, 'input', /element 0 is not finite/);
    rejects(digitsLike, { input: [...range(10), -Infinity, ...range(53)] }, 'input', /element 10 is not finite/);
  });

  test('finite numbers that overflow float32 are rejected, naming the element and the range', () => {
    const at7 = (v: number): number[] => [...range(7), v, ...range(56)];

    rejects(
      digitsLike,
      { input: at7(1e39) },
      'input',
      /element 7 is 1e\+39, outside float32 range \(expected float32\)/,
    );
    rejects(digitsLike, { input: at7(-1e39) }, 'input', /element 7 is -1e\+39, outside float32 range/);
    rejects(digitsLike, { input: at7(3.5e38) }, 'input', /element 7 is 3\.5e\+38, outside float32 range/);
    rejects(scalar, { input: 1e39 }, 'input', /expected one float32 value, is 1e\+39, outside float32 range/);
  });

  test('a string, null or boolean in a float input is rejected, naming the element and its type', () => {
    const at5 = (v: unknown): unknown[] => [...range(5), v, ...range(58)];

    rejects(digitsLike, { input: at5('1') }, 'input', /element 5 is a string, not a number \(expected float32\)/);
    rejects(digitsLike, { input: at5(null) }, 'input', /element 5 is null, not a number/);
    rejects(digitsLike, { input: at5(true) }, 'input', /element 5 is boolean, not a number/);
    rejects(digitsLike, { input: at5({}) }, 'input', /element 5 is object, not a number/);
  });

  test('a non-array value for a rank-1 input is rejected', () => {
    rejects(digitsLike, { input: 'abc' }, 'input', /expected an array \(float32, shape \[64\]\), got a string/);
    rejects(digitsLike, { input: null }, 'input', /expected an array.*got null/);
    rejects(digitsLike, { input: { 0: 1 } }, 'input', /expected an array.*got object/);
  });

  test('non-integers are rejected for int inputs', () => {
    rejects(ints, { input: [1, 2.5, 3] }, 'input', /element 1 is 2.5, not an integer \(expected int64\)/);
  });

  test('integers outside the dtype range are rejected', () => {
    rejects(model('int8', [1]), { input: [128] }, 'input', /element 0 is 128, outside int8 range/);
    rejects(model('uint8', [1]), { input: [-1] }, 'input', /element 0 is -1, outside uint8 range/);
    rejects(model('int32', [1]), { input: [2 ** 31] }, 'input', /outside int32 range/);
    rejects(ints, { input: [1, 2, 2 ** 53] }, 'input', /element 2 is 9007199254740992, outside int64 range/);
  });

  test('bool inputs reject values other than booleans, 0 and 1', () => {
    rejects(model('bool', [2]), { input: [true, 2] }, 'input', /element 1 is number, not a boolean/);
    rejects(model('bool', [2]), { input: ['true', false] }, 'input', /element 0 is a string, not a boolean/);
  });

  test('a scalar input rejects arrays of several values and non-numbers', () => {
    rejects(scalar, { input: [1, 2] }, 'input', /expected one float32 value, is an array, not a number/);
    rejects(scalar, { input: 'x' }, 'input', /expected one float32 value, is a string, not a number/);
  });

  test('a missing input is named with its dtype and shape', () => {
    rejects(digitsLike, {}, 'input', /missing input 'input' \(float32, shape \[64\]\)/);
  });

  test('an unknown extra input is rejected, listing the inputs the model has', () => {
    rejects(
      digitsLike,
      { input: range(64), extra: [1] },
      'extra',
      /model 'digits' has no input 'extra' \(inputs: 'input'\)/,
    );
  });

  test('an empty array is rejected as having no values', () => {
    rejects(digitsLike, { input: [] }, 'input', /input 'input': no values/);
    rejects(grid, { input: [[]] }, 'input', /no values/);
  });

  test('a flat array for a dynamic dimension is rejected when its length is not a multiple of the fixed part', () => {
    rejects(rows, { input: range(10) }, 'input', /expected a multiple of 4 values.*shape \[-1, 4\].*got 10/);
  });

  test('a flat array is rejected for a shape with several dynamic dimensions', () => {
    rejects(model('float32', [-1, -1]), { input: range(6) }, 'input', /ambiguous.*several dynamic dimensions/);
  });

  test('more than MAX_ELEMENTS_PER_INPUT elements are rejected (flat)', () => {
    const tooMany = new Array<number>(MAX_ELEMENTS_PER_INPUT + 1).fill(0);

    rejects(
      model('float32', [-1]),
      { input: tooMany },
      'input',
      new RegExp(`more than ${MAX_ELEMENTS_PER_INPUT} elements`),
    );
  });

  test('more than MAX_ELEMENTS_PER_INPUT elements are rejected (nested rows)', () => {
    const row = new Array<number>(1024).fill(0);
    const tooMany = new Array<number[]>(MAX_ELEMENTS_PER_INPUT / 1024 + 1).fill(row);

    rejects(model('float32', [-1, 1024]), { input: tooMany }, 'input', /more than \d+ elements/);
  });

  test('every bad input is reported, each with its own path', () => {
    let caught: unknown;
    try {
      validateItemInputs(twoInputs, { a: [1], c: 3 });
    } catch (err) {
      caught = err;
    }

    assert.ok(caught instanceof InvalidInputError);
    const paths = caught.details!.map((d) => d.path);
    assert.deepEqual(paths, [
      ['inputs', 'a'],
      ['inputs', 'b'],
      ['inputs', 'c'],
    ]);
    assert.match(caught.message, /input 'a'.*; missing input 'b'.*; model 'pair' has no input 'c'/);
  });
});
