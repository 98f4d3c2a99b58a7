import type { ItemInputs } from '../contracts/batch.js';
import { InvalidInputError, type ErrorDetail } from '../errors.js';
import type { ModelConfig, TensorDtype, TensorSpec } from './model-config.js';

/** Upper bound on the elements of one input of one item; keeps a hostile item from exhausting memory. */
export const MAX_ELEMENTS_PER_INPUT = 1 << 20;

/** One item's input, flattened, with its per-item dims resolved (dynamic dims filled in). */
export interface ItemTensor {
  data: number[] | boolean[];
  dims: number[];
}

const INT_RANGES: Partial<Record<TensorDtype, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/**
 * Checks one item's inputs against the model signature and flattens them. Used by the API (400 before
 * anything is queued) and by the inference activity (non-retryable InvalidInput). Throws InvalidInputError
 * naming every bad input, what was expected and what came.
 */
export function validateItemInputs(config: ModelConfig, inputs: ItemInputs): Record<string, ItemTensor> {
  const issues: ErrorDetail[] = [];
  const tensors: Record<string, ItemTensor> = {};
  for (const spec of config.inputs) {
    const value = inputs[spec.name];
    if (value === undefined) {
      issues.push({ path: ['inputs', spec.name], message: `missing input '${spec.name}' (${describe(spec)})` });
      continue;
    }
    const result = checkTensor(spec, value);
    if (typeof result === 'string') issues.push({ path: ['inputs', spec.name], message: result });
    else tensors[spec.name] = result;
  }
  for (const name of Object.keys(inputs)) {
    if (!config.inputs.some((s) => s.name === name)) {
      const known = config.inputs.map((s) => `'${s.name}'`).join(', ');
      issues.push({
        path: ['inputs', name],
        message: `model '${config.name}' has no input '${name}' (inputs: ${known})`,
      });
    }
  }
  if (issues.length > 0) {
    throw new InvalidInputError(issues.map((i) => i.message).join('; '), issues);
  }
  return tensors;
}

/** The one input a tokenized model's items carry. */
export const TEXT_FIELD = 'text';

/**
 * Checks a text model's item: exactly `{ "text": <non-empty string within maxChars> }`. Used by the API (400) and
 * the activity (non-retryable InvalidInput), like validateItemInputs for tensor models.
 */
export function validateTextInput(config: ModelConfig, inputs: ItemInputs): string {
  const maxChars = config.tokenizer!.maxChars;
  const fail = (name: string, message: string): never => {
    throw new InvalidInputError(message, [{ path: ['inputs', name], message }]);
  };
  for (const name of Object.keys(inputs)) {
    if (name !== TEXT_FIELD)
      fail(name, `model '${config.name}' takes one input, '${TEXT_FIELD}' (a string); got '${name}'`);
  }
  const text = inputs[TEXT_FIELD];
  if (typeof text !== 'string') {
    return fail(
      TEXT_FIELD,
      `input '${TEXT_FIELD}': expected a string, got ${text === undefined ? 'nothing' : typeof text}`,
    );
  }
  if (text.trim().length === 0) fail(TEXT_FIELD, `input '${TEXT_FIELD}': empty text`);
  if (text.length > maxChars) fail(TEXT_FIELD, `input '${TEXT_FIELD}': ${text.length} characters, at most ${maxChars}`);
  return text;
}

/** The API's check of one item, before anything is queued: text for tokenized models, tensors otherwise. */
export function checkItemInputs(config: ModelConfig, inputs: ItemInputs): void {
  if (config.tokenizer) validateTextInput(config, inputs);
  else validateItemInputs(config, inputs);
}

function describe(spec: TensorSpec): string {
  return `${spec.dtype}, shape [${spec.shape.join(', ')}]`;
}

function checkTensor(spec: TensorSpec, value: unknown): ItemTensor | string {
  const rank = spec.shape.length;
  if (rank === 0) {
    const scalar = Array.isArray(value) && value.length === 1 ? value[0] : value;
    const bad = checkElement(spec.dtype, scalar);
    return bad
      ? `input '${spec.name}': expected one ${spec.dtype} value, ${bad}`
      : { data: [scalar] as number[], dims: [] };
  }
  if (!Array.isArray(value)) {
    return `input '${spec.name}': expected an array (${describe(spec)}), got ${typeName(value)}`;
  }
  let flat: unknown[];
  let dims: number[];
  if (isFlatOf(spec.dtype, value)) {
    // The common case (a flat array of valid values) in one pass, as the general path below would take it.
    flat = value;
    dims = [value.length];
  } else {
    flat = [];
    dims = [];
    const shapeError = flatten(value, 0, rank, dims, flat, { leafDepth: -1 });
    if (shapeError) return `input '${spec.name}': ${shapeError} (expected ${describe(spec)})`;
  }

  const itemDims = itemDimsOf(spec, dims, flat.length);
  if (typeof itemDims === 'string') return itemDims;
  for (let i = 0; i < flat.length; i++) {
    const bad = checkElement(spec.dtype, flat[i]);
    if (bad) return `input '${spec.name}': element ${i} ${bad} (expected ${spec.dtype})`;
  }
  return { data: flat as number[] | boolean[], dims: itemDims };
}

/**
 * An item's dims from the shape its value came in (`dims`, one length per nesting level, `count` values in all):
 * the nested form matches every fixed dimension, the flat form (one level for a rank > 1 input) holds a fitting
 * number of values with at most one dynamic dimension. A string says why it does not fit.
 */
function itemDimsOf(spec: TensorSpec, dims: number[], count: number): number[] | string {
  const rank = spec.shape.length;
  if (count === 0) return `input '${spec.name}': no values (expected ${describe(spec)})`;
  if (dims.length !== rank && dims.length !== 1) {
    return `input '${spec.name}': nested ${dims.length} levels deep; send ${rank} levels or one flat array (expected ${describe(spec)})`;
  }
  if (dims.length === rank) {
    // nested form: every fixed dimension must match
    const mismatch = spec.shape.findIndex((d, i) => d !== -1 && d !== dims[i]);
    if (mismatch !== -1) {
      return `input '${spec.name}': dimension ${mismatch} is ${dims[mismatch]}, expected ${spec.shape[mismatch]} (expected ${describe(spec)}, got shape [${dims.join(', ')}])`;
    }
    return dims;
  }
  // flat form (depth 1 for a rank > 1 input): the count must fit, with at most one dynamic dimension
  const fixed = spec.shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const dynamic = spec.shape.filter((d) => d === -1).length;
  if (dynamic > 1) {
    return `input '${spec.name}': a flat array is ambiguous for a shape with several dynamic dimensions; send it nested (${describe(spec)})`;
  }
  if (dynamic === 0 ? count !== fixed : count % fixed !== 0) {
    return `input '${spec.name}': expected ${dynamic === 0 ? fixed : `a multiple of ${fixed}`} values (${describe(spec)}), got ${count}`;
  }
  return spec.shape.map((d) => (d === -1 ? count / fixed : d));
}

/** The bytes of JSON text the number scan below reads. */
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** JSON's whitespace within a line: space and tab. */
export const isLineSpace = (c: number | undefined) => c === 0x20 || c === 0x09;

/**
 * Whether the UTF-8 bytes `bytes[from, to)` are exactly a flat JSON array of plain numbers (`[0,1.5,-2e-3]`, spaces
 * or tabs allowed between its tokens, no nesting) that is a valid value of `spec`, as validateItemInputs would find
 * after JSON.parse: every number a valid `spec.dtype` value, as many as the shape takes. It reads the bytes once and
 * builds nothing (not even their text), so an NDJSON upload checks its common lines without decoding or parsing
 * them. false means "not known": anything else (nested arrays, bool or scalar inputs, a bad value) is left to the
 * general path, which decides and words the error. Never true for text the general path refuses.
 */
export function flatNumbersFit(spec: TensorSpec, bytes: Buffer, from: number, to: number): boolean {
  const { dtype } = spec;
  const range = INT_RANGES[dtype];
  if (spec.shape.length === 0 || (!range && dtype !== 'float32' && dtype !== 'float64')) return false;
  // A number with at most this many digits before its point, and no exponent, is finite in the dtype
  // (below 1e38 for float32, whose largest is about 3.4e38).
  const finiteDigits = dtype === 'float32' ? 38 : 308;
  const end = to - 1; // the closing bracket
  if (end <= from || bytes[from] !== 0x5b || bytes[end] !== 0x5d) return false;
  let count = 0;
  let i = from + 1;
  // Plain comparisons in tight loops (isLineSpace and a digit helper here measured slower: data/fit-probe3.ts in
  // BENCHMARKS.md's twenty-second session); a byte past the end reads as undefined, which no comparison takes.
  let c = bytes[i]!;
  for (;;) {
    while (c === 0x20 || c === 0x09) c = bytes[++i]!;
    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?  (JSON's number grammar)
    const start = i;
    if (c === 0x2d) c = bytes[++i]!;
    const intStart = i;
    if (c === DIGIT_0) c = bytes[++i]!;
    else if (c > DIGIT_0 && c <= DIGIT_9) {
      do c = bytes[++i]!;
      while (c >= DIGIT_0 && c <= DIGIT_9);
    } else return false;
    const intDigits = i - intStart;
    let plain = true; // no fraction, no exponent
    if (c === 0x2e) {
      plain = false;
      c = bytes[++i]!;
      if (!(c >= DIGIT_0 && c <= DIGIT_9)) return false;
      do c = bytes[++i]!;
      while (c >= DIGIT_0 && c <= DIGIT_9);
    }
    let exponent = false;
    if (c === 0x65 || c === 0x45) {
      plain = false;
      exponent = true;
      c = bytes[++i]!;
      if (c === 0x2b || c === 0x2d) c = bytes[++i]!;
      if (!(c >= DIGIT_0 && c <= DIGIT_9)) return false;
      do c = bytes[++i]!;
      while (c >= DIGIT_0 && c <= DIGIT_9);
    }
    if (++count > MAX_ELEMENTS_PER_INPUT) return false;
    if (range && plain && intDigits <= 15) {
      // exact as a double: compared with the range as it is
      let v = 0;
      for (let k = intStart; k < i; k++) v = v * 10 + (bytes[k]! - DIGIT_0);
      if (start !== intStart) v = -v;
      if (v < range[0] || v > range[1]) return false;
    } else if (range || exponent || intDigits > finiteDigits) {
      if (checkElement(dtype, Number(bytes.toString('latin1', start, i)))) return false;
    }
    while (c === 0x20 || c === 0x09) c = bytes[++i]!;
    if (i === end) break;
    if (c !== 0x2c) return false;
    c = bytes[++i]!;
  }
  return typeof itemDimsOf(spec, [count], count) !== 'string';
}

/**
 * Whether `value` is a flat array of valid float32 or float64 values (no nested arrays, within
 * MAX_ELEMENTS_PER_INPUT): then it is its own flattened form and needs no element check. Other dtypes, and any
 * array that is not, take the general path, which also words the error.
 */
function isFlatOf(dtype: TensorDtype, value: unknown[]): boolean {
  if (value.length > MAX_ELEMENTS_PER_INPUT) return false;
  if (dtype === 'float32') {
    // Math.fround of a non-finite double, or of one beyond float32's range, is not finite.
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (typeof v !== 'number' || !Number.isFinite(Math.fround(v))) return false;
    }
    return true;
  }
  if (dtype === 'float64') {
    for (let i = 0; i < value.length; i++) if (!Number.isFinite(value[i])) return false;
    return true;
  }
  return false;
}

/** Flattens a rectangular nested array up to maxDepth levels; records each level's length in dims. */
function flatten(
  value: unknown[],
  depth: number,
  maxDepth: number,
  dims: number[],
  out: unknown[],
  state: { leafDepth: number },
): string | undefined {
  if (depth === dims.length) dims.push(value.length);
  else if (dims[depth] !== value.length)
    return `ragged array: level ${depth} has lengths ${dims[depth]} and ${value.length}`;
  for (const v of value) {
    if (Array.isArray(v)) {
      if (depth + 1 >= maxDepth) return `nested deeper than the input's rank ${maxDepth}`;
      if (state.leafDepth !== -1 && state.leafDepth <= depth) return `ragged array: mixes values and arrays`;
      const err = flatten(v, depth + 1, maxDepth, dims, out, state);
      if (err) return err;
    } else {
      if (state.leafDepth === -1) state.leafDepth = depth;
      else if (state.leafDepth !== depth) return `ragged array: mixes values and arrays`;
      out.push(v);
      if (out.length > MAX_ELEMENTS_PER_INPUT) return `more than ${MAX_ELEMENTS_PER_INPUT} elements`;
    }
  }
  return undefined;
}

function checkElement(dtype: TensorDtype, v: unknown): string | undefined {
  if (dtype === 'bool')
    return typeof v === 'boolean' || v === 0 || v === 1 ? undefined : `is ${typeName(v)}, not a boolean`;
  if (typeof v !== 'number') return `is ${typeName(v)}, not a number`;
  if (!Number.isFinite(v)) return `is not finite`;
  // A JSON number may be finite as a double and still overflow float32 (1e39): the model would see Infinity.
  if (dtype === 'float32' && !Number.isFinite(Math.fround(v))) return `is ${v}, outside float32 range`;
  const range = INT_RANGES[dtype];
  if (range) {
    if (!Number.isInteger(v)) return `is ${v}, not an integer`;
    if (v < range[0] || v > range[1]) return `is ${v}, outside ${dtype} range`;
  }
  return undefined;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `a string` : typeof v;
}
