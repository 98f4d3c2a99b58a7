// The binary tensor data extension's body parser and response writer: round trips of every datatype the models
// use, and a table of hostile bodies, each refused with a 400 that says what is wrong (never a crash).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { INFERENCE_HEADER } from '../../src/contracts/kserve-infer.js';
import { InvalidRequestError } from '../../src/errors.js';
import { parseInferBody } from '../../src/api/kserve-infer-request.js';
import { encodeInferResponse, wantsBinary, type InferResult } from '../../src/api/kserve-infer-response.js';
import { decodeTensor, encodeTensor } from '../../src/api/kserve-tensor-codec.js';

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
const lengthPrefixed = (strings: string[]) =>
  Buffer.concat(
    strings.flatMap((s) => {
      const bytes = Buffer.from(s, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return [length, bytes];
    }),
  );

/** A body in the extension's layout: the JSON, then the tensors' bytes; returns it with its header length. */
function binaryBody(json: unknown, ...tensors: Buffer[]): { body: Buffer; headerLength: number } {
  const head = Buffer.from(JSON.stringify(json));
  return { body: Buffer.concat([head, ...tensors]), headerLength: head.length };
}

const digitsInput = (rows: number, size: number) => ({
  name: 'input',
  shape: [rows, 64],
  datatype: 'FP32',
  parameters: { binary_data_size: size },
});

describe('binary infer bodies', () => {
  test('FP32 inputs after the JSON are decoded row-major, little-endian', () => {
    const values = Array.from({ length: 128 }, (_, i) => i / 4);
    const { body, headerLength } = binaryBody({ inputs: [digitsInput(2, 512)] }, f32(values));
    const parsed = parseInferBody(body, headerLength);
    assert.deepEqual(parsed.inputs[0]!.data, values);
  });

  test('JSON and binary inputs mix, and the bytes go to the binary ones in order', () => {
    const json = {
      inputs: [
        { name: 'a', shape: [1, 2], datatype: 'INT64', parameters: { binary_data_size: 16 } },
        { name: 'b', shape: [1], datatype: 'FP32', data: [0.5] },
        { name: 'c', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: 4 + 5 + 4 + 3 } },
        { name: 'd', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } },
      ],
    };
    const int64 = Buffer.alloc(16);
    int64.writeBigInt64LE(-7n, 0);
    int64.writeBigInt64LE(2n ** 40n, 8);
    const { body, headerLength } = binaryBody(json, int64, lengthPrefixed(['hello', 'hé']), Buffer.from([1, 0, 1]));
    const parsed = parseInferBody(body, headerLength);
    assert.deepEqual(
      parsed.inputs.map((i) => i.data),
      [[-7, 2 ** 40], [0.5], ['hello', 'hé'], [true, false, true]],
    );
  });

  test('a body without the header is plain JSON', () => {
    const json = { inputs: [{ name: 'input', shape: [1, 1], datatype: 'FP32', data: [1] }] };
    assert.deepEqual(parseInferBody(Buffer.from(JSON.stringify(json)), undefined).inputs[0]!.data, [1]);
  });

  const ok = binaryBody({ inputs: [digitsInput(1, 256)] }, f32(new Array(64).fill(0)));
  const hostile: { name: string; body: Buffer; headerLength: number | undefined; message: RegExp }[] = [
    { name: 'header length larger than the body', ...ok, headerLength: ok.body.length + 1, message: /has only/ },
    {
      name: 'truncated binary data',
      body: ok.body.subarray(0, ok.body.length - 3),
      headerLength: ok.headerLength,
      message: /goes past the end of the body/,
    },
    {
      name: 'bytes left over after the last binary input',
      body: Buffer.concat([ok.body, Buffer.alloc(4)]),
      headerLength: ok.headerLength,
      message: /add up to 256/,
    },
    {
      name: 'binary_data_size that disagrees with shape and datatype',
      ...binaryBody({ inputs: [digitsInput(2, 256)] }, f32(new Array(64).fill(0))),
      message: /128 FP32 values take 512 bytes, binary_data_size is 256/,
    },
    {
      name: 'header length cutting the JSON short',
      ...ok,
      headerLength: ok.headerLength - 2,
      message: /are not valid JSON/,
    },
    {
      name: 'binary data without the length header',
      body: ok.body,
      headerLength: undefined,
      message: /not valid JSON \(binary tensor data needs/,
    },
    {
      name: 'binary_data_size without the length header',
      body: Buffer.from(JSON.stringify({ inputs: [digitsInput(1, 256)] })),
      headerLength: undefined,
      message: /has no Inference-Header-Content-Length header/,
    },
    {
      name: 'unknown datatype',
      ...binaryBody({ inputs: [{ ...digitsInput(1, 256), datatype: 'FP8' }] }, f32(new Array(64).fill(0))),
      message: /datatype/,
    },
    {
      name: 'both data and binary_data_size',
      ...binaryBody({ inputs: [{ ...digitsInput(1, 256), data: [1] }] }, f32(new Array(64).fill(0))),
      message: /either data or parameters.binary_data_size/,
    },
    {
      name: 'negative binary_data_size',
      ...binaryBody({ inputs: [digitsInput(1, -4)] }),
      message: /binary_data_size/,
    },
    {
      name: 'BYTES element whose length runs past its tensor',
      ...binaryBody(
        { inputs: [{ name: 't', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 6 } }] },
        Buffer.from([9, 0, 0, 0, 0x61, 0x62]),
      ),
      message: /says 9 bytes, 2 are left/,
    },
    {
      name: 'BYTES count that disagrees with the shape',
      ...binaryBody(
        { inputs: [{ name: 't', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: 5 } }] },
        lengthPrefixed(['a']),
      ),
      message: /holds 2 BYTES elements, binary data has 1/,
    },
    {
      name: 'BYTES that are not UTF-8',
      ...binaryBody(
        { inputs: [{ name: 't', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 6 } }] },
        Buffer.from([2, 0, 0, 0, 0xc3, 0x28]),
      ),
      message: /not UTF-8/,
    },
    {
      name: 'INT64 beyond 2^53',
      ...binaryBody(
        { inputs: [{ name: 'i', shape: [1], datatype: 'INT64', parameters: { binary_data_size: 8 } }] },
        Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x40]),
      ),
      message: /beyond what this server takes/,
    },
    { name: 'an empty body', body: Buffer.alloc(0), headerLength: undefined, message: /body is empty/ },
  ];
  for (const { name, body, headerLength, message } of hostile) {
    test(`refused with 400: ${name}`, () => {
      assert.throws(
        () => parseInferBody(body, headerLength),
        (err: unknown) => {
          assert.ok(err instanceof InvalidRequestError, `${name}: ${String(err)}`);
          assert.equal(err.status, 400);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});

describe('binary infer responses', () => {
  const result: InferResult = {
    model_name: 'digits',
    model_version: '1',
    id: 'r1',
    outputs: [
      { name: 'label', datatype: 'INT64', shape: [2], data: [3, 9] },
      { name: 'probabilities', datatype: 'FP32', shape: [2, 2], data: [0.25, 0.75, 0.5, 0.5] },
    ],
  };

  test('binary outputs leave the JSON for bytes after it, in output order, sized in binary_data_size', () => {
    const { json, tail } = encodeInferResponse(result, () => true);
    const head = JSON.parse(json.toString());
    assert.deepEqual(
      head.outputs.map((o: { parameters: unknown; data?: unknown }) => [o.parameters, o.data]),
      [
        [{ binary_data_size: 16 }, undefined],
        [{ binary_data_size: 16 }, undefined],
      ],
    );
    const bytes = Buffer.concat(tail);
    assert.deepEqual([bytes.readBigInt64LE(0), bytes.readBigInt64LE(8)], [3n, 9n]);
    assert.deepEqual(decodeTensor('p', 'FP32', bytes.subarray(16), 4), [0.25, 0.75, 0.5, 0.5]);
  });

  test('JSON outputs stay JSON, and nothing follows when no output is binary', () => {
    const { json, tail } = encodeInferResponse(result, (name) => name === 'label');
    const head = JSON.parse(json.toString());
    assert.deepEqual(head.outputs[1].data, [0.25, 0.75, 0.5, 0.5]);
    assert.equal(tail.length, 1);
    assert.equal(encodeInferResponse(result, () => false).tail.length, 0);
  });

  test("an output's binary_data overrides the request's binary_data_output", () => {
    const request = {
      inputs: [],
      parameters: { binary_data_output: true },
      outputs: [{ name: 'label', parameters: { binary_data: false } }, { name: 'probabilities' }],
    };
    assert.equal(wantsBinary(request, 'label'), false);
    assert.equal(wantsBinary(request, 'probabilities'), true);
    assert.equal(wantsBinary({ inputs: [] }, 'label'), false);
  });

  test('BYTES outputs are length-prefixed and round-trip', () => {
    const bytes = encodeTensor('BYTES', ['a', 'bcé']);
    assert.deepEqual(bytes, lengthPrefixed(['a', 'bcé']));
    assert.deepEqual(decodeTensor('t', 'BYTES', bytes, 2), ['a', 'bcé']);
  });

  test(`${INFERENCE_HEADER} counts the JSON's bytes, not its characters`, () => {
    const named = { ...result, id: 'é' };
    const { json } = encodeInferResponse(named, () => true);
    assert.equal(json.toString('utf8').length + 1, json.length);
  });
});
