// The Open Inference Protocol (KServe v2) endpoints and /v1/models over HTTP, against the real dev server and
// real models: metadata, readiness, and infer with scikit-learn's labels for held-out rows.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import {
  KServeErrorResponse,
  KServeInferResponse,
  KServeModelMetadata,
  ModelList,
  ModelResource,
} from '../../src/contracts/predict.js';
import { INFERENCE_HEADER } from '../../src/contracts/kserve-infer.js';
import { heldout } from '../helpers/data.js';
import { ROOT } from '../helpers/temporal.js';
import { ACME, GLOBEX, startOnlineStack, type OnlineStack } from './online-stack.js';

const rows = heldout('digits').slice(30, 38);

/** A KServe infer body of the held-out rows: one FP32 tensor [rows, 64], flat row-major. */
const inferBody = (extra: Record<string, unknown> = {}) => ({
  inputs: [{ name: 'input', shape: [rows.length, 64], datatype: 'FP32', data: rows.flatMap((r) => r.inputs.input) }],
  ...extra,
});

/** The held-out rows as the binary tensor data extension sends them: float32, little-endian, row-major. */
const rowBytes = () => Buffer.from(new Float32Array(rows.flatMap((r) => r.inputs.input)).buffer);

/** A body with binary tensor data: the JSON, then the bytes; the length header to send with it. */
function binaryBody(json: unknown, bytes: Buffer): { body: Buffer; headers: Record<string, string> } {
  const head = Buffer.from(JSON.stringify(json));
  return { body: Buffer.concat([head, bytes]), headers: { [INFERENCE_HEADER]: String(head.length) } };
}

const binaryInput = (size: number) => ({
  name: 'input',
  shape: [rows.length, 64],
  datatype: 'FP32',
  parameters: { binary_data_size: size },
});

describe('KServe v2 and /v1/models over HTTP on a real Temporal dev server', () => {
  let s: OnlineStack;

  before(async () => {
    s = await startOnlineStack();
  });

  after(async () => {
    await s?.close();
  });

  test('server metadata names batchline and its version', async () => {
    const res = await s.call('GET', '/v2');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      name: 'batchline',
      version: JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
      extensions: ['binary_tensor_data', 'model_configuration', 'statistics'],
    });
  });

  test('model metadata: versions, platform, tensors with -1 for the batch dimension', async () => {
    const expected = {
      name: 'digits',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 64] }],
      outputs: [
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 10] },
      ],
    };
    for (const route of ['/v2/models/digits', '/v2/models/digits/versions/1']) {
      const res = await s.call('GET', route);
      assert.equal(res.status, 200, route);
      KServeModelMetadata.parse(res.body);
      assert.deepEqual(res.body, expected, route);
    }
    const text = await s.call('GET', '/v2/models/all-minilm-l6-v2');
    assert.deepEqual(text.body.inputs, [{ name: 'text', datatype: 'BYTES', shape: [-1] }]);
    assert.deepEqual(text.body.outputs, [{ name: 'embedding', datatype: 'FP32', shape: [-1, 384] }]);
  });

  test('model ready is 200 for a model that can serve; unknown models, versions and routes are 404 in the protocol’s shape', async () => {
    for (const route of ['/v2/models/digits/ready', '/v2/models/digits/versions/1/ready']) {
      const res = await s.call('GET', route);
      assert.equal(res.status, 200, route);
      assert.deepEqual(res.body, { name: 'digits', ready: true });
    }
    for (const route of [
      '/v2/models/nope',
      '/v2/models/nope/ready',
      '/v2/models/digits/versions/7',
      '/v2/models/digits/versions/7/ready',
      '/v2/models/digits/explain',
    ]) {
      const res = await s.call('GET', route);
      assert.equal(res.status, 404, route);
      assert.equal(typeof res.body.error, 'string', `${route}: ${JSON.stringify(res.body)}`);
    }
  });

  test('infer splits the batch dimension into items and stacks scikit-learn’s labels back, with and without a version', async () => {
    for (const route of ['/v2/models/digits/infer', '/v2/models/digits/versions/1/infer']) {
      const res = await s.call('POST', route, inferBody({ id: 'req-1' }));
      assert.equal(res.status, 200, `${route}: ${JSON.stringify(res.body)}`);
      KServeInferResponse.parse(res.body);
      assert.equal(res.body.model_name, 'digits');
      assert.equal(res.body.model_version, '1');
      assert.equal(res.body.id, 'req-1');
      const label = res.body.outputs.find((o: any) => o.name === 'label');
      assert.deepEqual(label, {
        name: 'label',
        shape: [rows.length],
        datatype: 'INT64',
        data: rows.map((r) => r.expected.label),
      });
      const probabilities = res.body.outputs.find((o: any) => o.name === 'probabilities');
      assert.deepEqual(probabilities.shape, [rows.length, 10]);
      assert.equal(probabilities.datatype, 'FP32');
      const expected = rows.flatMap((r) => r.expected.probabilities);
      probabilities.data.forEach((p: number, i: number) =>
        assert.ok(Math.abs(p - expected[i]!) < 1e-4, `probability ${i}`),
      );
    }
  });

  test('infer takes nested data, returns only the outputs asked for, and its task is the tenant’s', async () => {
    const body = inferBody({ outputs: [{ name: 'label' }] });
    body.inputs[0]!.data = rows.map((r) => r.inputs.input) as never;
    const res = await s.call('POST', '/v2/models/digits/infer', body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.outputs.map((o: any) => o.name),
      ['label'],
    );
    assert.deepEqual(
      res.body.outputs[0].data,
      rows.map((r) => r.expected.label),
    );
    // Without a request id the response's id is the task's, readable at /v1/tasks by its tenant only.
    const task = await s.call('GET', `/v1/tasks/${res.body.id}`);
    assert.equal(task.status, 200, JSON.stringify(task.body));
    assert.equal(task.body.source, 'kserve');
    assert.equal(task.body.items, rows.length);
    assert.deepEqual(
      task.body.results.map((r: any) => r.label),
      rows.map((r) => r.expected.labelName),
    );
    assert.equal((await s.call('GET', `/v1/tasks/${res.body.id}`, undefined, {}, GLOBEX)).status, 404);
  });

  test('bad infer requests are refused in the protocol’s error shape before anything starts', async () => {
    const before = await s.metric('prediction_requests_total{source="kserve"}');
    const bad = [
      { inputs: [{ name: 'input', shape: [2, 64], datatype: 'FP64', data: new Array(128).fill(0) }] },
      { inputs: [{ name: 'input', shape: [2, 64], datatype: 'FP32', data: new Array(100).fill(0) }] },
      { inputs: [{ name: 'pixels', shape: [1, 64], datatype: 'FP32', data: new Array(64).fill(0) }] },
      { inputs: [{ name: 'input', shape: [1, 32], datatype: 'FP32', data: new Array(32).fill(0) }] },
      { inputs: [{ name: 'input', shape: [1, 64], datatype: 'FP32', data: ['x', ...new Array(63).fill(0)] }] },
      inferBody({ outputs: [{ name: 'nope' }] }),
      { inputs: [] },
    ];
    for (const body of bad) {
      const res = await s.call('POST', '/v2/models/digits/infer', body);
      assert.equal(res.status, 400, JSON.stringify(body).slice(0, 120));
      assert.deepEqual(Object.keys(res.body), ['error']);
      KServeErrorResponse.parse(res.body);
    }
    const unknown = await s.call('POST', '/v2/models/nope/infer', inferBody());
    assert.equal(unknown.status, 404);
    assert.equal(typeof unknown.body.error, 'string');
    assert.equal(await s.metric('prediction_requests_total{source="kserve"}'), before, 'no task was started');
  });

  test('infer takes JSON without Content-Type, as application/octet-stream and gzip-compressed; other media types are 415', async () => {
    const post = (body: Buffer | string, headers: Record<string, string>) =>
      fetch(`${s.api.url}/v2/models/digits/infer`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME}`, ...headers },
        body,
      });
    const json = JSON.stringify(inferBody({ outputs: [{ name: 'label' }] }));
    const labels = rows.map((r) => r.expected.label);
    for (const [what, body, headers] of [
      ['no Content-Type', Buffer.from(json), {}],
      ['application/octet-stream', Buffer.from(json), { 'content-type': 'application/octet-stream' }],
      ['gzip', zlib.gzipSync(json), { 'content-type': 'application/json', 'content-encoding': 'gzip' }],
    ] as const) {
      const res = await post(body, headers);
      const answer = (await res.json()) as any;
      assert.equal(res.status, 200, `${what}: ${JSON.stringify(answer)}`);
      assert.deepEqual(answer.outputs[0].data, labels, what);
    }
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const res = await post(json, { 'content-type': type });
      assert.equal(res.status, 415, type);
      const body = (await res.json()) as any;
      assert.deepEqual(Object.keys(body), ['error'], type);
      assert.match(body.error, /application\/json or application\/octet-stream or none/);
    }
  });

  test('binary tensor data in and out: the bytes after the JSON header, the length in Inference-Header-Content-Length', async () => {
    const { body, headers } = binaryBody(
      {
        inputs: [binaryInput(rows.length * 64 * 4)],
        outputs: [{ name: 'label', parameters: { binary_data: true } }, { name: 'probabilities' }],
      },
      rowBytes(),
    );
    const res = await fetch(`${s.api.url}/v2/models/digits/infer`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME}`, ...headers },
      body,
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    const bytes = Buffer.from(await res.arrayBuffer());
    const length = Number(res.headers.get(INFERENCE_HEADER));
    const head = JSON.parse(bytes.subarray(0, length).toString());
    const [label, probabilities] = head.outputs;
    assert.deepEqual(label, {
      name: 'label',
      shape: [rows.length],
      datatype: 'INT64',
      parameters: { binary_data_size: rows.length * 8 },
    });
    assert.equal(probabilities.data.length, rows.length * 10, 'an output not asked for as binary stays JSON');
    const tail = bytes.subarray(length);
    assert.equal(tail.length, rows.length * 8);
    assert.deepEqual(
      rows.map((_, i) => Number(tail.readBigInt64LE(i * 8))),
      rows.map((r) => r.expected.label),
    );
  });

  test('binary bodies that do not add up are 400 in the protocol’s shape, and start nothing', async () => {
    const before = await s.metric('prediction_requests_total{source="kserve"}');
    const size = rows.length * 64 * 4;
    const ok = binaryBody({ inputs: [binaryInput(size)] }, rowBytes());
    const short = binaryBody({ inputs: [binaryInput(size - 4)] }, rowBytes().subarray(4));
    const cases: [string, Buffer, Record<string, string>][] = [
      ['length header past the body', ok.body, { [INFERENCE_HEADER]: String(ok.body.length + 10) }],
      ['length header not a number', ok.body, { [INFERENCE_HEADER]: 'ten' }],
      ['truncated', ok.body.subarray(0, ok.body.length - 5), ok.headers],
      ['size that disagrees with the shape', short.body, short.headers],
      ['binary data without the length header', ok.body, {}],
    ];
    for (const [what, body, headers] of cases) {
      const res = await fetch(`${s.api.url}/v2/models/digits/infer`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACME}`, 'content-type': 'application/octet-stream', ...headers },
        body,
      });
      const answer = (await res.json()) as any;
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(answer)}`);
      assert.deepEqual(Object.keys(answer), ['error'], what);
    }
    assert.equal(await s.metric('prediction_requests_total{source="kserve"}'), before, 'no task was started');
  });

  test('model configuration, statistics and repository index; unknown models 404, bad versions 400', async () => {
    const config = await s.call('GET', '/v2/models/all-minilm-l6-v2/config');
    assert.equal(config.status, 200);
    assert.deepEqual(config.body.input, [
      { name: 'text', data_type: 'TYPE_STRING', dims: [1], reshape: { shape: [] } },
    ]);
    assert.deepEqual(config.body.dynamic_batching, { preferred_batch_size: [16], max_queue_delay_microseconds: 0 });
    const stats = await s.call('GET', '/v2/models/breast-cancer/versions/1/stats');
    assert.equal(stats.status, 200);
    assert.deepEqual([stats.body.model_stats[0].name, stats.body.model_stats[0].inference_count], ['breast-cancer', 0]);
    const index = await s.call('POST', '/v2/repository/index');
    assert.equal(index.status, 200);
    assert.ok(index.body.some((e: any) => e.name === 'digits' && e.version === '1' && e.state === 'READY'));
    for (const [route, status] of [
      ['/v2/models/nope/config', 404],
      ['/v2/models/nope/stats', 404],
      ['/v2/models/digits/versions/7/config', 404],
      ['/v2/models/digits/versions/7/stats', 404],
      ['/v2/models/digits/versions/x/stats', 400],
    ] as const) {
      const res = await s.call('GET', route);
      assert.equal(res.status, status, route);
      assert.deepEqual(Object.keys(res.body), ['error'], route);
    }
  });

  test('infer on the text model: BYTES rows in, one FP32 embedding per row out, as /v1/predict computes it', async () => {
    const texts = ['A man is playing a guitar.', 'The cat sleeps on the sofa.'];
    const res = await s.call('POST', '/v2/models/all-minilm-l6-v2/infer', {
      inputs: [{ name: 'text', shape: [2], datatype: 'BYTES', data: texts }],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    const [embedding] = res.body.outputs;
    assert.equal(embedding.name, 'embedding');
    assert.deepEqual(embedding.shape, [2, 384]);
    const single = await s.call('POST', '/v1/predict', { model: 'all-minilm-l6-v2', inputs: { text: texts[1] } });
    assert.equal(single.status, 200);
    const second = embedding.data.slice(384);
    single.body.result.embedding.forEach((v: number, i: number) =>
      assert.ok(Math.abs(v - second[i]) < 1e-4, `dimension ${i}`),
    );
  });

  test('GET /v1/models lists every model with its signature; GET /v1/models/:name one, 404 if unknown', async () => {
    const list = await s.call('GET', '/v1/models');
    assert.equal(list.status, 200);
    ModelList.parse(list.body);
    const names = list.body.models.map((m: any) => m.name);
    assert.ok(names.includes('digits') && names.includes('breast-cancer'), names.join());
    const digits = await s.call('GET', '/v1/models/digits');
    assert.equal(digits.status, 200);
    ModelResource.parse(digits.body);
    assert.deepEqual(
      digits.body,
      list.body.models.find((m: any) => m.name === 'digits'),
    );
    assert.equal(digits.body.kind, 'classifier');
    assert.deepEqual(digits.body.versions, [1]);
    assert.equal(digits.body.latest, 1);
    assert.equal(digits.body.maxBatchSize, 128);
    assert.deepEqual(digits.body.inputs, [{ name: 'input', dtype: 'float32', shape: [64] }]);
    assert.deepEqual(digits.body.outputs, [
      { name: 'label', dtype: 'int64', shape: [] },
      { name: 'probabilities', dtype: 'float32', shape: [10] },
    ]);
    assert.deepEqual(digits.body.labels, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(digits.body.links, { self: '/v1/models/digits', kserve: '/v2/models/digits' });
    const text = list.body.models.find((m: any) => m.name === 'all-minilm-l6-v2');
    assert.equal(text.kind, 'embedding');
    assert.deepEqual(text.inputs, [{ name: 'text', dtype: 'string', shape: [] }]);
    const missing = await s.call('GET', '/v1/models/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'not_found');
  });
});
