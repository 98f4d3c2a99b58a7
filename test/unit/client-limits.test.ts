// The bounds of what a client controls, as the request schemas hold them (src/contracts/limits.ts): metadata, model
// names, item ids, list cursors and the NDJSON headers. Each over-limit value fails with an issue at its own field,
// which the API answers as a 400 naming it; the largest valid value still passes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { z } from 'zod';
import { BatchItem, BatchMetadata, CreateBatchRequest, ModelName } from '../../src/contracts/batch.js';
import { ListBatchesQuery, NdjsonSubmitHeaders } from '../../src/contracts/batch-queries.js';
import {
  MAX_ITEM_ID_LENGTH,
  MAX_LIST_CURSOR_LENGTH,
  MAX_OPTIONS_HEADER_LENGTH,
  METADATA_MAX_BYTES,
  METADATA_MAX_KEY_LENGTH,
  METADATA_MAX_KEYS,
  METADATA_MAX_VALUE_LENGTH,
} from '../../src/contracts/limits.js';

/** The paths of the issues `value` fails with (none: it passes). */
function issuePaths(schema: z.ZodType, value: unknown): string[] {
  const parsed = schema.safeParse(value);
  return parsed.success ? [] : parsed.error.issues.map((i) => JSON.stringify(i.path));
}

/** `n` keys named k0, k1, ... padded to `keyLength`, each with `value`. */
const metadata = (n: number, value: string, keyLength = 2): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`.padEnd(keyLength, '_'), value]));

/** A page token as Temporal's SQL visibility hands it out, base64url. */
const pageToken = Buffer.from(
  JSON.stringify({ CloseTime: '9999-12-31T23:59:59Z', StartTime: '2026-01-01T00:00:00Z', RunID: 'r' }),
).toString('base64url');

describe('batch metadata', () => {
  test('the largest metadata of plain text passes: every key and value at its longest', () => {
    const largest = metadata(METADATA_MAX_KEYS, 'v'.repeat(METADATA_MAX_VALUE_LENGTH), METADATA_MAX_KEY_LENGTH);
    assert.deepEqual(issuePaths(BatchMetadata, largest), []);
    assert.deepEqual(issuePaths(BatchMetadata, {}), []);
  });

  test('too many keys, a long key, a long value or a value that is not a string each fail at their field', () => {
    assert.deepEqual(issuePaths(BatchMetadata, metadata(METADATA_MAX_KEYS + 1, 'v')), ['[]']);
    const longKey = 'k'.repeat(METADATA_MAX_KEY_LENGTH + 1);
    assert.deepEqual(issuePaths(BatchMetadata, { [longKey]: 'v' }), [JSON.stringify([longKey])]);
    assert.deepEqual(issuePaths(BatchMetadata, { team: 'v'.repeat(METADATA_MAX_VALUE_LENGTH + 1) }), ['["team"]']);
    assert.deepEqual(issuePaths(BatchMetadata, { team: 7 }), ['["team"]']);
    assert.deepEqual(issuePaths(BatchMetadata, { team: { nested: 'x' } }), ['["team"]']);
  });

  test('within the key and value limits, text that takes more than the byte limit as JSON fails', () => {
    // Each NUL is six bytes as JSON (\u0000), each euro sign three in UTF-8.
    for (const char of ['\u0000', '€']) {
      const heavy = metadata(METADATA_MAX_KEYS, char.repeat(METADATA_MAX_VALUE_LENGTH));
      assert.ok(Buffer.byteLength(JSON.stringify(heavy)) > METADATA_MAX_BYTES, 'the case exceeds the byte limit');
      assert.deepEqual(issuePaths(BatchMetadata, heavy), ['[]'], JSON.stringify(char));
    }
  });

  test('in a batch request the issue names metadata', () => {
    const request = { model: 'digits', items: [{ inputs: { input: [0] } }], metadata: metadata(100, 'v') };
    assert.deepEqual(issuePaths(CreateBatchRequest, request), ['["metadata"]']);
  });
});

describe('model names, item ids, cursors and NDJSON headers', () => {
  test('a model name is 1-128 of the repository’s characters; quotes, spaces and control characters are not', () => {
    for (const ok of ['digits', 'all-minilm-l6-v2', 'm.v2_x', 'a'.repeat(128)])
      assert.deepEqual(issuePaths(ModelName, ok), [], ok);
    for (const bad of ['', '\u0000', 'two words', "x' OR '1'='1", '-leading', 'a'.repeat(129), 'digits\n']) {
      assert.deepEqual(issuePaths(ModelName, bad), ['[]'], JSON.stringify(bad));
    }
  });

  test('an item id is 1-256 characters without control characters', () => {
    const item = (id: string) => ({ id, inputs: {} });
    for (const ok of ['a', 'é-漢字 with spaces', 'i'.repeat(MAX_ITEM_ID_LENGTH)]) {
      assert.deepEqual(issuePaths(BatchItem, item(ok)), [], ok);
    }
    for (const bad of ['', 'a\u0000b', 'line\nbreak', 'tab\t', 'del\u007f', 'i'.repeat(MAX_ITEM_ID_LENGTH + 1)]) {
      assert.deepEqual(issuePaths(BatchItem, item(bad)), ['["id"]'], JSON.stringify(bad));
    }
  });

  test('the list query refuses a model that is not a name and a cursor that is not a page token, by field', () => {
    assert.deepEqual(issuePaths(ListBatchesQuery, { model: '\u0000' }), ['["model"]']);
    assert.deepEqual(issuePaths(ListBatchesQuery, { model: 'x'.repeat(129) }), ['["model"]']);
    const notTokens = [
      'KZ', // the property-based test's find: one byte, not JSON
      'KQ',
      Buffer.from('[]').toString('base64url'),
      Buffer.from('"text"').toString('base64url'),
      Buffer.from([0xff, 0xfe, 0x7b, 0x7d]).toString('base64url'), // not UTF-8
      'eyJ9', // '{"}'
      'a+b/c=',
      'x'.repeat(MAX_LIST_CURSOR_LENGTH + 1),
    ];
    for (const cursor of notTokens) {
      assert.deepEqual(issuePaths(ListBatchesQuery, { cursor }), ['["cursor"]'], cursor);
    }
    assert.deepEqual(issuePaths(ListBatchesQuery, { cursor: pageToken, model: 'digits' }), []);
    assert.deepEqual(issuePaths(ListBatchesQuery, { cursor: '' }), [], 'an empty cursor is the first page');
  });

  test('the NDJSON headers are bounded: a model name, a version number, options of bounded length', () => {
    assert.deepEqual(issuePaths(NdjsonSubmitHeaders, { 'Batchline-Model': 'two words' }), ['["Batchline-Model"]']);
    for (const bad of ['0', 'one', '1.5', '1234567890']) {
      assert.deepEqual(issuePaths(NdjsonSubmitHeaders, { 'Batchline-Version': bad }), ['["Batchline-Version"]'], bad);
    }
    const options = 'x'.repeat(MAX_OPTIONS_HEADER_LENGTH + 1);
    assert.deepEqual(issuePaths(NdjsonSubmitHeaders, { 'Batchline-Options': options }), ['["Batchline-Options"]']);
    const valid = { 'Batchline-Model': 'digits', 'Batchline-Version': '1', 'Batchline-Options': '{"concurrency":4}' };
    assert.deepEqual(issuePaths(NdjsonSubmitHeaders, valid), []);
  });
});
