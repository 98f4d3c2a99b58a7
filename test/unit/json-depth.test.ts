import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDepthExceeds, MAX_JSON_DEPTH, scanJson } from '../../src/api/json-depth.js';

const nested = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth);

test('jsonDepthExceeds: nesting up to the limit passes, one level more does not, as text and as bytes', () => {
  const cases: [string, boolean][] = [
    [nested(MAX_JSON_DEPTH), false],
    [nested(MAX_JSON_DEPTH + 1), true],
    [`{"a":${nested(MAX_JSON_DEPTH - 1)}}`, false],
    [`{"a":${nested(MAX_JSON_DEPTH)}}`, true],
    // Brackets inside strings do not count, escaped quotes do not end a string, non-ASCII text is skipped whole.
    [`{"s":"${'['.repeat(100)}"}`, false],
    [`{"s":"é\\"${'{'.repeat(100)}ü"}`, false],
    [`{"s":"\\\\"${'['.repeat(MAX_JSON_DEPTH)}]}`, true],
    [`["日本語 ${'['.repeat(50)}", ${nested(MAX_JSON_DEPTH - 1)}]`, false],
    [`["😀", ${nested(MAX_JSON_DEPTH)}]`, true],
  ];
  for (const [text, deep] of cases) {
    assert.equal(jsonDepthExceeds(text), deep, `as text: ${text.slice(0, 60)}`);
    assert.equal(jsonDepthExceeds(Buffer.from(text)), deep, `as bytes: ${text.slice(0, 60)}`);
  }
});

test('scanJson: a comma directly inside the outermost value means more than one member, as text and as bytes', () => {
  const cases: [string, boolean][] = [
    ['{"inputs":{"a":[1,2,3],"b":"x,y"}}', false],
    ['{"inputs":{"a":1},"id":"x"}', true],
    ['{"inputs":{"a":1},"inputs":{"a":2}}', true], // a repeated key: JSON.parse keeps the last
    [String.raw`{"s":"a,b\"c\\"}`, false], // a comma in a string, an escaped quote, an escaped backslash
    [String.raw`{"s":"a\\","t":1}`, true],
    ['{"é,ü":[1,2],"😀":3}', true],
    ['[[1,2],[3,4]]', true],
    ['{"a":[{"b":1,"c":2}]}', false],
  ];
  for (const [text, many] of cases) {
    JSON.parse(text); // every case is valid JSON
    assert.equal(scanJson(text).manyMembers, many, `as text: ${text}`);
    assert.equal(scanJson(Buffer.from(text)).manyMembers, many, `as bytes: ${text}`);
  }
});
