// The NDJSON upload's scan of its common lines (commonRow, flatNumbersFit) against the general path it stands in
// for: whatever the scan accepts, JSON.parse, the item schema and validateItemInputs accept too, with the same stored
// values; lines it leaves alone are still decided by the general path; and the lines people send (JSON.stringify's
// and Python's json.dumps's, with ids or without) are taken by the scan, not only left to the general path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inputProblems, ItemIssues } from '../../src/api/batch-submission.js';
import { commonLine, commonRow, NdjsonLines, type LineOutput } from '../../src/api/ndjson-lines.js';
import { BatchItem } from '../../src/contracts/batch.js';
import { flatNumbersFit, MAX_ELEMENTS_PER_INPUT, validateItemInputs } from '../../src/runtime/input-validation.js';
import { ModelConfig, type TensorDtype } from '../../src/runtime/model-config.js';
import type { ResolvedModel } from '../../src/runtime/model-repository.js';

function config(dtype: TensorDtype, shape: number[]): ModelConfig {
  return ModelConfig.parse({
    name: 'm',
    inputs: [{ name: 'input', dtype, shape }],
    outputs: [{ name: 'out', dtype: 'float32', shape: [1] }],
  });
}

/** Whether the general path takes `text` as the input's value: JSON.parse, then the model's check. */
function generalAccepts(c: ModelConfig, text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  try {
    validateItemInputs(c, { input: value });
    return true;
  } catch {
    return false;
  }
}

/** A model of the repository with this config (nothing is loaded: NdjsonLines reads only its config). */
const resolved = (c: ModelConfig): ResolvedModel => ({
  name: c.name,
  version: 1,
  file: '/nowhere/model.onnx',
  versions: [1],
  config: c,
});

/** A repeatable stream of integers below `n` (a linear congruential generator from `seed`). */
function seeded(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
}

/** The scan of `text` as an upload's bytes hold it: between other bytes, which it must not read. */
const fits = (c: ModelConfig, text: string) => {
  const bytes = Buffer.from(`x]${text}]y`);
  return flatNumbersFit(c.inputs[0]!, bytes, 2, bytes.length - 2);
};

const SPECS: [TensorDtype, number[]][] = [
  ['float32', [3]],
  ['float32', [2, 2]],
  ['float32', [-1, 2]],
  ['float64', [-1]],
  ['int8', [3]],
  ['uint8', [-1]],
  ['int16', [2]],
  ['uint16', [2]],
  ['int32', [2, -1]],
  ['int64', [2]],
  ['bool', [2]],
  ['float32', []],
  ['float32', [-1, -1]],
];

/** Numbers and near-numbers at the edges of every dtype and of JSON's grammar. */
const TOKENS = [
  '0',
  '-0',
  '1',
  '-1',
  '7',
  '1.0',
  '1.5',
  '-2.25',
  '0.001',
  '1e-05',
  '1E5',
  '2e+3',
  '1e39',
  '-1e39',
  '3.4e38',
  '3.5e38',
  '340282356779733661637539395458142568447',
  '340282356779733661637539395458142568448',
  '99999999999999999999999999999999999999',
  '1e308',
  '1e309',
  '127',
  '128',
  '-128',
  '-129',
  '255',
  '256',
  '32767',
  '32768',
  '65535',
  '65536',
  '2147483647',
  '2147483648',
  '-2147483648',
  '-2147483649',
  '9007199254740991',
  '9007199254740992',
  '-9007199254740991',
  '-9007199254740992',
  '123456789012345',
  '1234567890123456',
  '01',
  '-01',
  '1.',
  '.5',
  '-',
  '+1',
  '1e',
  '1e+',
  '0x10',
  'NaN',
  'Infinity',
  'true',
  'false',
  'null',
  '"1"',
  '[1]',
  ' 1',
  '1 ',
  '',
  '00',
  '0.0e0',
  '-0.0',
];

test('every array of edge tokens the scan accepts, the general path accepts', () => {
  let accepted = 0;
  for (const [dtype, shape] of SPECS) {
    const c = config(dtype, shape);
    for (const a of TOKENS) {
      for (const b of TOKENS) {
        for (const text of [`[${a},${b}]`, `[${a},${b},${a}]`, `[${a},${b},${a},${b}]`, `[${a}]`, `[${a}${b}]`]) {
          const fast = fits(c, text);
          if (fast) {
            accepted++;
            assert.ok(generalAccepts(c, text), `${dtype} [${shape}]: the scan took ${text}`);
          }
        }
      }
    }
  }
  assert.ok(accepted > 1000, `the scan accepted ${accepted} texts`);
});

test('random edits of valid arrays: never accepted by the scan alone', () => {
  const alphabet = ['0', '1', '9', '-', '+', '.', 'e', 'E', ',', '[', ']', ' ', '"', 'n', '\\'];
  const random = seeded(7);
  let accepted = 0;
  for (const [dtype, shape] of SPECS) {
    const c = config(dtype, shape);
    for (let k = 0; k < 3000; k++) {
      const values = Array.from({ length: 1 + random(5) }, () => TOKENS[random(22)]!);
      let text = `[${values.join(',')}]`;
      for (let edits = 1 + random(3); edits > 0; edits--) {
        const at = random(text.length + 1);
        const ch = alphabet[random(alphabet.length)]!;
        const kind = random(3);
        text =
          kind === 0
            ? text.slice(0, at) + ch + text.slice(at)
            : kind === 1
              ? text.slice(0, at) + text.slice(at + 1)
              : text.slice(0, at) + ch + text.slice(at + 1);
      }
      if (fits(c, text)) {
        accepted++;
        assert.ok(generalAccepts(c, text), `${dtype} [${shape}]: the scan took ${text}`);
      }
    }
  }
  assert.ok(accepted > 100, `the scan accepted ${accepted} edited texts`);
});

test("the arrays JSON.stringify and Python's json.dumps write for valid values are taken by the scan", () => {
  const cases: [TensorDtype, number[], number[]][] = [
    ['float32', [4], [0, -1.5, 3.4e38, 1e-7]],
    ['float32', [2, 2], [0.1, 0.2, 0.30000000000000004, -0]],
    ['float32', [-1, 2], [1, 2, 3, 4, 5, 6]],
    ['float64', [-1], [1e300, -2.5e-300, 5]],
    ['int8', [3], [-128, 0, 127]],
    ['uint8', [-1], [0, 255]],
    ['int64', [2], [Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]],
    ['int32', [2, -1], [1, 2, 3, 4]],
  ];
  for (const [dtype, shape, values] of cases) {
    const c = config(dtype, shape);
    const text = JSON.stringify(values);
    assert.ok(generalAccepts(c, text), text);
    assert.equal(fits(c, text), true, `${dtype} [${shape}]: ${text}`);
    const spaced = `[ ${values.map((v) => JSON.stringify(v)).join(' ,\t')} ]`; // json.dumps writes ', '
    assert.ok(generalAccepts(c, spaced), spaced);
    assert.equal(fits(c, spaced), true, `${dtype} [${shape}]: ${spaced}`);
  }
});

test('out of range, the wrong count and inputs the scan does not cover are left to the general path', () => {
  const no: [TensorDtype, number[], string][] = [
    ['float32', [2], '[1,1e39]'],
    ['float32', [2], '[1,340282356779733661637539395458142568448]'],
    ['float64', [1], '[1e309]'],
    ['int8', [2], '[1,128]'],
    ['uint8', [2], '[1,-1]'],
    ['int32', [1], '[2147483648]'],
    ['int64', [1], '[9007199254740992]'],
    ['int16', [1], '[1.5]'],
    ['float32', [3], '[1,2]'],
    ['float32', [-1, 2], '[1,2,3]'],
    ['float32', [-1, -1], '[1,2]'], // a flat array is ambiguous there
    ['float32', [], '[1]'], // a scalar input
    ['bool', [2], '[1,0]'],
    ['float32', [2], '[[1],[2]]'],
    ['float32', [-1], '[]'],
  ];
  for (const [dtype, shape, text] of no) assert.equal(fits(config(dtype, shape), text), false, text);
  // At the element limit and one past it.
  const c = config('uint8', [-1]);
  assert.equal(fits(c, `[${new Array(MAX_ELEMENTS_PER_INPUT).fill(1).join(',')}]`), true);
  assert.equal(fits(c, `[${new Array(MAX_ELEMENTS_PER_INPUT + 1).fill(1).join(',')}]`), false);
});

/** What the general path makes of one line: its stored values, or undefined when the line is refused. */
function generalRow(model: ResolvedModel, text: string): [string, unknown] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = BatchItem.safeParse(value);
  if (!parsed.success || inputProblems(model, parsed.data)) return undefined;
  return [parsed.data.id ?? '', parsed.data.inputs];
}

test('NDJSON lines with and without ids, compact, spaced and edited: stored and refused exactly as the general path does', () => {
  const model = resolved(config('float32', [3]));
  const base = [
    '{"inputs":{"input":[1,2.5,-3]}}',
    '{"id":"a-1","inputs":{"input":[1,2.5,-3]}}',
    '{"id": "a-2", "inputs": {"input": [1.0, 2.5, -3e-2]}}',
    ' { "id" : "b" , "inputs" : { "input" : [ 1 , 2 , 3 ] } } ',
    '{"id":"caf\\u00e9","inputs":{"input":[1,2,3]}}',
    '{"id":"x\\y","inputs":{"input":[1,2,3]}}',
    '{"inputs":{"input":[1,2,3]},"id":"late"}',
    '{"id":"","inputs":{"input":[1,2,3]}}',
    `{"id":"${'z'.repeat(300)}","inputs":{"input":[1,2,3]}}`,
    '{"id":"tab\there","inputs":{"input":[1,2,3]}}',
    '{"id":"ok","inputs":{"input":[1,2,3],"extra":[1]}}',
    '{"id":"ok","inputs":{"input":[1,2,1e39]}}',
  ];
  const alphabet = ['"', ':', ',', '{', '}', '[', ']', ' ', '\t', 'i', 'd', '1', '-', '.', 'e', '\\'];
  const random = seeded(11);
  const lines = [...base];
  for (let k = 0; k < 4000; k++) {
    let text = base[random(4)]!;
    for (let edits = 1 + random(2); edits > 0; edits--) {
      const at = random(text.length + 1);
      const ch = alphabet[random(alphabet.length)]!;
      text = random(2) === 0 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
    }
    if (!text.includes('\n') && text.trim() !== '') lines.push(text);
  }
  let stored = 0;
  for (const text of lines) {
    const source = new NdjsonLines({ model, maxItems: 10, groupSize: 10 });
    const outs = [...source.write(Buffer.from(text)), ...source.end()];
    const rows = outs.flatMap((o) => (o.kind === 'rows' ? o.rows : []));
    const expected = generalRow(model, text);
    if (!expected) {
      assert.deepEqual(rows, [], `stored a line the general path refuses: ${text}`);
      assert.ok(
        outs.some((o) => o.kind === 'bad'),
        text,
      );
      continue;
    }
    stored++;
    assert.equal(rows.length, 1, text);
    assert.equal(rows[0]![0], expected[0], text);
    assert.deepEqual(JSON.parse(rows[0]![1]), expected[1], text);
  }
  assert.ok(stored > 100, `${stored} lines stored`);
  // The scan itself takes the common forms, ids and spaces included, and leaves the rest to the general path.
  const common = commonLine(model)!;
  assert.deepEqual(
    base.map((text) => {
      const bytes = Buffer.from(`${text}\n{"inputs":{"input":[1,2,3]}}`); // another line after it, not to be read
      return commonRow(common, bytes, 0, Buffer.byteLength(text));
    }),
    [
      ['', '{"input":[1,2.5,-3]}'],
      ['a-1', '{"input":[1,2.5,-3]}'],
      ['a-2', '{"input": [1.0, 2.5, -3e-2]}'],
      ['b', '{ "input" : [ 1 , 2 , 3 ] }'],
      ...new Array(base.length - 4).fill(undefined),
    ],
  );
});

test('an NDJSON body: common lines stored as they came, bad common lines reported as the general path words them', () => {
  const model = resolved(config('float32', [2]));
  const read = (lines: string[]) => {
    const source = new NdjsonLines({ model, maxItems: 100, groupSize: 100 });
    return [...source.write(Buffer.from(lines.join('\n'))), ...source.end()];
  };
  assert.deepEqual(read(['{"inputs":{"input":[1,2.5]}}', '{"inputs":{"input":[3e-2,-4]}}']), [
    {
      kind: 'rows',
      rows: [
        ['', '{"input":[1,2.5]}'],
        ['', '{"input":[3e-2,-4]}'],
      ],
      lines: [1, 2],
    },
  ]);
  const issues = new ItemIssues();
  for (const out of read(['{"inputs":{"input":[1,2]}}', '{"inputs":{"input":[1,1e39]}}', '{"inputs":{"input":[1]}}']))
    if (out.kind === 'bad') issues.add(out.path, out.details);
  assert.deepEqual(issues.details, [
    {
      path: ['line', 2, 'inputs', 'input'],
      message: "input 'input': element 1 is 1e+39, outside float32 range (expected float32)",
    },
    {
      path: ['line', 3, 'inputs', 'input'],
      message: "input 'input': dimension 0 is 1, expected 2 (expected float32, shape [2], got shape [1])",
    },
  ]);
});

test('an NDJSON body cut anywhere, CRLF, blank and non-ASCII lines included: read as its text, line by line', () => {
  const model = resolved(config('float32', [2]));
  const lines = [
    '\uFEFF{"inputs":{"input":[1,2]}}', // a byte order mark: not JSON
    '{"id":"café","inputs":{"input":[1,2]}}\r',
    '  \t ',
    '\u00a0\u3000',
    '{"id":"🙂-x","inputs": {"input": [3, 4]}}',
    '{"inputs":{"input":[5,6]},"id":"late"}',
    '',
    '\r',
    `{"id":"long","inputs":{"input":[1${' '.repeat(200)},2]}}`,
    '{"id":"bad","inputs":{"input":[1,"2"]}}',
    '{"id":"also-bad","inputs":{"input":[1]}}\r',
    '{"inputs":{"input":[7,8]}}',
  ];
  const body = Buffer.from(lines.join('\n'));
  // What the body says, read as its text: a line per '\n', its CR dropped, blank lines skipped, any other line as
  // the general path takes it (its line from 1: the issues name it).
  const expected: { line: number; row?: [string, unknown] }[] = [];
  body
    .toString('utf8')
    .split('\n')
    .forEach((raw, k) => {
      const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (text.trim() !== '') expected.push({ line: k + 1, row: generalRow(model, text) });
    });
  assert.deepEqual(
    expected.map((e) => [e.line, e.row !== undefined]),
    [
      [1, false],
      [2, true],
      [5, true],
      [6, true],
      [9, true],
      [10, false],
      [11, false],
      [12, true],
    ],
  );
  for (const size of [1, 2, 3, 5, 17, 64, body.length]) {
    const source = new NdjsonLines({ model, maxItems: 100, groupSize: 100 });
    const outs: LineOutput[] = [];
    for (let at = 0; at < body.length; at += size) outs.push(...source.write(body.subarray(at, at + size)));
    outs.push(...source.end());
    // Every line is stored or reported, in order, as the text says; after the first bad line nothing is stored.
    const bad = outs.flatMap((o) => (o.kind === 'bad' ? [o.path[1]] : []));
    assert.deepEqual(bad, [1, 10, 11], `pieces of ${size}`);
    assert.deepEqual(
      outs.filter((o) => o.kind === 'rows'),
      [],
      `pieces of ${size}`,
    );
    assert.equal(source.total, expected.length, `pieces of ${size}`);
  }
  // The same body without its bad lines: every valid line stored with the values and id its text holds.
  const good = expected.filter((e) => e.row);
  const goodBody = Buffer.from(good.map((e) => lines[e.line - 1]).join('\n'));
  for (const size of [1, 3, 64, goodBody.length]) {
    const source = new NdjsonLines({ model, maxItems: 100, groupSize: 2 });
    const outs: LineOutput[] = [];
    for (let at = 0; at < goodBody.length; at += size) outs.push(...source.write(goodBody.subarray(at, at + size)));
    outs.push(...source.end());
    const rows = outs.flatMap((o) => (o.kind === 'rows' ? o.rows : []));
    assert.deepEqual(
      rows.map(([id, inputs]) => [id, JSON.parse(inputs)]),
      good.map((e) => e.row),
      `pieces of ${size}`,
    );
  }
});
