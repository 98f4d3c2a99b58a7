// The OpenAI-compatible Files, Batch and Embeddings API, driven by the official `openai` npm package pointed at
// batchline (baseURL /openai/v1, a batchline API key), against the real dev server and the real models: upload,
// create, poll, download the output, match by custom_id, read it while the batch runs, cancel.
import assert from 'node:assert/strict';
import http from 'node:http';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { Webhook } from 'standardwebhooks';
import { OpenAIBatch } from '../../src/contracts/openai.js';
import { itemStoreFile } from '../../src/stores/sqlite-item-store.js';
import { heldout } from '../helpers/data.js';
import { ROOT, waitFor } from '../helpers/temporal.js';
import { Receiver } from '../helpers/webhook-receiver.js';
import { ACME, GLOBEX, HELD, startOnlineStack, type OnlineStack } from './online-stack.js';

const EMBEDDER = 'all-minilm-l6-v2';
const MAX_FILE_BYTES = 256 * 1024;

/**
 * A multipart upload written in 16 KiB pieces (each after the last drained), `fileBytes` of file in all, or cut off
 * after `cutAfter` bytes of file: resolves with the response's status, or 'cut' when it was cut off.
 */
function rawUpload(url: string, fileBytes: number, cutAfter?: number): Promise<number | 'cut'> {
  const head =
    '--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n' +
    '--b\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n' +
    'Content-Type: application/octet-stream\r\n\r\n';
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/openai/v1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME}`, 'content-type': 'multipart/form-data; boundary=b' },
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', (err) => (answered || cutAfter !== undefined ? undefined : reject(err)));
    void (async () => {
      req.write(head);
      const piece = Buffer.alloc(16 * 1024, '{}\n');
      for (let sent = 0; sent < fileBytes && !answered; sent += piece.length) {
        if (cutAfter !== undefined && sent >= cutAfter) {
          req.destroy();
          resolve('cut');
          return;
        }
        if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
      }
      if (!answered) req.end('\r\n--b--\r\n');
    })();
  });
}
const reference = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'models', EMBEDDER, 'testdata', 'reference.json'), 'utf8'),
) as { sentences: string[]; embeddings: number[][] };
const digits = heldout('digits').slice(0, 6);

const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
};

const jsonl = (lines: unknown[]): string =>
  lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');
const predictLine = (customId: string, input: number[]) => ({
  custom_id: customId,
  method: 'POST',
  url: '/v1/predict',
  body: { model: 'digits', inputs: { input } },
});

/** Output lines by custom_id. */
const byCustomId = (text: string): Map<string, any> =>
  new Map(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .map((l) => [l.custom_id, l]),
  );

describe('the OpenAI-compatible API through the official openai SDK, on a real Temporal dev server', () => {
  let s: OnlineStack;
  let openai: OpenAI;
  let other: OpenAI;

  const receiver = new Receiver();

  before(async () => {
    await receiver.start();
    // the test's own webhook receiver; files of up to 256 KiB, so an upload can go past the limit
    s = await startOnlineStack({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', MAX_FILE_BYTES: String(MAX_FILE_BYTES) });
    openai = new OpenAI({ baseURL: `${s.api.url}/openai/v1`, apiKey: ACME, maxRetries: 0 });
    other = new OpenAI({ baseURL: `${s.api.url}/openai/v1`, apiKey: GLOBEX, maxRetries: 0 });
  });

  after(async () => {
    await s?.close();
    await receiver.stop();
  });

  const finished = (id: string) =>
    waitFor(`batch ${id} to end`, async () => {
      const b = await openai.batches.retrieve(id);
      return ['completed', 'failed', 'cancelled', 'expired'].includes(b.status) ? b : undefined;
    });

  test('embeddings batch: upload, create, poll, download; vectors match sentence-transformers by custom_id', async () => {
    const sentences = reference.sentences;
    const lines = [
      ...sentences.slice(0, 5).map((text, i) => ({
        custom_id: `s-${i}`,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: EMBEDDER, input: text },
      })),
      // one request embedding several texts: one output line, its vectors in input order
      {
        custom_id: 'many',
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: EMBEDDER, input: sentences.slice(5) },
      },
    ];
    const file = await openai.files.create({
      file: await toFile(Buffer.from(jsonl(lines)), 'emb.jsonl'),
      purpose: 'batch',
    });
    assert.equal(file.object, 'file');
    assert.equal(file.purpose, 'batch');
    assert.equal(file.bytes, Buffer.byteLength(jsonl(lines)));
    assert.equal(
      await (await openai.files.content(file.id)).text(),
      jsonl(lines),
      'the upload reads back byte for byte',
    );

    const created = await openai.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/embeddings',
      completion_window: '24h',
      metadata: { run: 'sdk-test' },
    });
    OpenAIBatch.parse(created);
    assert.equal(created.status, 'in_progress');
    assert.deepEqual(created.metadata, { run: 'sdk-test' });
    const done = await finished(created.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.deepEqual(done.request_counts, { total: 6, completed: 6, failed: 0 });
    assert.equal(done.error_file_id, null);
    assert.ok(done.completed_at && done.completed_at >= done.created_at);

    const output = byCustomId(await (await openai.files.content(done.output_file_id!)).text());
    assert.deepEqual([...output.keys()].sort(), ['many', 's-0', 's-1', 's-2', 's-3', 's-4']);
    for (let i = 0; i < 5; i++) {
      const line = output.get(`s-${i}`);
      assert.equal(line.response.status_code, 200);
      assert.equal(line.error, null);
      assert.equal(line.response.body.object, 'list');
      assert.ok(line.response.body.usage.prompt_tokens > 0, 'usage counts the tokens');
      const vector = line.response.body.data[0].embedding as number[];
      assert.equal(vector.length, 384);
      assert.ok(cosine(vector, reference.embeddings[i]!) >= 0.999, `s-${i}`);
    }
    const many = output.get('many').response.body.data as { index: number; embedding: number[] }[];
    assert.deepEqual(
      many.map((d) => d.index),
      sentences.slice(5).map((_, j) => j),
    );
    many.forEach((d, j) => assert.ok(cosine(d.embedding, reference.embeddings[5 + j]!) >= 0.999, `many[${j}]`));

    const outFile = await openai.files.retrieve(done.output_file_id!);
    assert.equal(outFile.purpose, 'batch_output');
    assert.equal(outFile.bytes, Buffer.byteLength(await (await openai.files.content(done.output_file_id!)).text()));

    // the same batch underneath: batchline's own view of it
    const own = await s.call('GET', `/v1/batches/${(done as any).batchline_batch_id}`);
    assert.equal(own.status, 200);
    assert.equal(own.body.total, 5 + sentences.slice(5).length, 'one item per text');
    assert.deepEqual(own.body.metadata, { run: 'sdk-test' });
  });

  test('beyond OpenAI: batchline_webhook delivers signed item and end webhooks of the batch', async () => {
    const lines = digits.slice(0, 3).map((r, i) => predictLine(`w-${i}`, r.inputs.input));
    const file = await openai.files.create({
      file: await toFile(Buffer.from(jsonl(lines)), 'w.jsonl'),
      purpose: 'batch',
    });
    const url = receiver.route('/openai-hook', () => ({ status: 204 }));
    const created = (await openai.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/predict' as any,
      completion_window: '24h',
      batchline_webhook: { url },
    } as any)) as any;
    assert.equal(created.batchline_webhook.url, url);
    assert.match(created.batchline_webhook.secret, /^whsec_/, 'the secret, once, in the creating response');
    const read = (await openai.batches.retrieve(created.id)) as any;
    assert.deepEqual(read.batchline_webhook, { url, events: ['item', 'batch'] }, 'never the secret again');
    const verifier = new Webhook(created.batchline_webhook.secret);
    const messages = await waitFor('the batch.completed webhook', () => {
      const got = receiver
        .at('/openai-hook')
        .map((r) => verifier.verify(r.body, r.headers) as { type: string; data: any });
      return got.some((m) => m.type === 'batch.completed') ? got : undefined;
    });
    assert.deepEqual(
      messages
        .filter((m) => m.type.startsWith('item.'))
        .map((m) => m.data.id)
        .sort(),
      ['w-0', 'w-1', 'w-2'],
    );
    await assert.rejects(
      openai.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/predict' as any,
        completion_window: '24h',
        batchline_webhook: { url: 'http://10.1.2.3/hook' },
      } as any),
      (err: any) => err.status === 400 && /webhook/.test(err.message),
    );
  });

  test('sync embeddings: the SDK default (base64) and float both match sentence-transformers', async () => {
    const input = reference.sentences.slice(0, 3);
    const decoded = await openai.embeddings.create({ model: EMBEDDER, input });
    assert.equal(decoded.data.length, 3);
    decoded.data.forEach((d, i) => assert.ok(cosine(d.embedding, reference.embeddings[i]!) >= 0.999, `base64 ${i}`));
    assert.ok(decoded.usage.prompt_tokens > 0);
    const floats = await openai.embeddings.create({ model: EMBEDDER, input: input[0]!, encoding_format: 'float' });
    assert.ok(cosine(floats.data[0]!.embedding, reference.embeddings[0]!) >= 0.999);

    await assert.rejects(openai.embeddings.create({ model: 'digits', input: 'x' }), (err: any) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /not an embedding model/);
      return true;
    });
    await assert.rejects(
      openai.embeddings.create({ model: EMBEDDER, input: new Array<string>(129).fill('a text') }),
      (err: any) => err.status === 400 && /at most 128 texts/.test(err.message) && /batch API/.test(err.message),
    );
    await assert.rejects(openai.embeddings.create({ model: EMBEDDER, input: 'x', dimensions: 128 }), (err: any) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /384 dimensions/);
      return true;
    });
  });

  test('an input file with bad lines gives a failed batch with each problem and its line, and runs nothing', async () => {
    const file = await openai.files.create({
      file: await toFile(
        Buffer.from(
          jsonl([
            predictLine('ok-1', digits[0]!.inputs.input),
            '{not json',
            {
              method: 'POST',
              url: '/v1/predict',
              body: { model: 'digits', inputs: { input: digits[1]!.inputs.input } },
            },
            predictLine('ok-1', digits[2]!.inputs.input),
            { ...predictLine('wrong-url', digits[3]!.inputs.input), url: '/v1/chat/completions' },
            predictLine('short', [1, 2, 3]),
            {
              ...predictLine('other-model', digits[4]!.inputs.input),
              body: { model: 'breast-cancer', inputs: { input: [] } },
            },
          ]),
        ),
        'bad.jsonl',
      ),
      purpose: 'batch',
    });
    const batch = await openai.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/predict' as any,
      completion_window: '24h',
    });
    assert.equal(batch.status, 'failed');
    assert.equal(batch.output_file_id, null);
    assert.equal((batch as any).batchline_batch_id, null, 'nothing ran');
    const errors = batch.errors!.data!.map((e) => [e.line, e.code]);
    assert.deepEqual(errors, [
      [2, 'invalid_json_line'],
      [3, 'invalid_request'],
      [4, 'duplicate_custom_id'],
      [5, 'mismatched_url'],
      [6, 'invalid_body'],
      [7, 'mixed_models'],
    ]);
    assert.match(batch.errors!.data![2]!.message!, /custom_id 'ok-1' is used twice/);
    assert.match(batch.errors!.data![4]!.message!, /input/);
    assert.equal((await openai.batches.retrieve(batch.id)).status, 'failed');

    // requests that are not about a line: the house error shape, 400 or 404, never a 5xx
    await assert.rejects(
      openai.batches.create({
        input_file_id: 'file-00000000000000000000',
        endpoint: '/v1/embeddings',
        completion_window: '24h',
      }),
      (err: any) => err.status === 400 && /no file/.test(err.message),
    );
    await assert.rejects(
      openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
      (err: any) => err.status === 400,
    );
    await assert.rejects(openai.batches.retrieve('batch_00000000000000000000'), (err: any) => err.status === 404);
    await assert.rejects(openai.batches.retrieve('batch_nope'), (err: any) => err.status === 404);
  });

  test('the output file grows while the batch runs, resumable by offset; cancel keeps what finished', async () => {
    s.gate.shut();
    const held = [...digits[5]!.inputs.input];
    held[0] = HELD;
    const lines = [
      ...digits.slice(0, 4).map((r, i) => predictLine(`d-${i}`, r.inputs.input)),
      predictLine('held', held),
    ];
    const file = await openai.files.create({
      file: await toFile(Buffer.from(`\uFEFF${jsonl(lines)}`), 'd.jsonl'), // with a byte order mark, as some editors save
      purpose: 'batch',
    });
    const batch = await openai.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/predict' as any,
      completion_window: '24h',
    });
    assert.equal(batch.status, 'in_progress');
    const outputUrl = `/openai/v1/files/${batch.output_file_id}/content`;
    const partial = await waitFor('four of five lines in the output file', async () => {
      const res = await fetch(`${s.api.url}${outputUrl}`, { headers: { authorization: `Bearer ${ACME}` } });
      const text = await res.text();
      const complete = res.headers.get('batchline-file-complete');
      return text.split('\n').filter(Boolean).length === 4 ? { text, complete } : undefined;
    });
    assert.equal(partial.complete, 'false');
    const out = byCustomId(partial.text);
    for (let i = 0; i < 4; i++) {
      assert.equal(out.get(`d-${i}`).response.body.label, digits[i]!.expected.labelName, `d-${i}`);
    }
    const running = await openai.batches.retrieve(batch.id);
    assert.equal(running.status, 'in_progress');
    assert.deepEqual(running.request_counts, { total: 5, completed: 4, failed: 0 });

    // another tenant sees none of it
    await assert.rejects(other.batches.retrieve(batch.id), (err: any) => err.status === 404);
    await assert.rejects(other.files.retrieve(file.id), (err: any) => err.status === 404);
    await assert.rejects(other.files.content(batch.output_file_id!), (err: any) => err.status === 404);

    const cancelling = await openai.batches.cancel(batch.id);
    assert.ok(['cancelling', 'cancelled'].includes(cancelling.status), cancelling.status);
    assert.ok(cancelling.cancelling_at);
    const cancelled = await finished(batch.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.ok(cancelled.cancelled_at);
    // resumed from the bytes already read: nothing new (the held request was canceled, not finished)
    const rest = await fetch(`${s.api.url}${outputUrl}?offset=${Buffer.byteLength(partial.text)}`, {
      headers: { authorization: `Bearer ${ACME}` },
    });
    assert.equal(rest.status, 200);
    assert.equal(rest.headers.get('batchline-file-complete'), 'true');
    assert.equal(await rest.text(), '');
    const whole = await (await openai.files.content(batch.output_file_id!)).text();
    assert.equal(whole, partial.text, 'the same bytes on every read');
    s.gate.open();
  });

  test('files: list newest first with pagination, retrieve, delete; a wrong purpose or a missing file part is 400', async () => {
    const a = await openai.files.create({ file: await toFile(Buffer.from('{}\n'), 'a.jsonl'), purpose: 'batch' });
    const b = await openai.files.create({ file: await toFile(Buffer.from('{}\n'), 'b.jsonl'), purpose: 'batch' });
    const page = await openai.files.list({ limit: 1 } as any);
    assert.equal(page.data[0]!.id, b.id, 'newest first');
    assert.equal(page.hasNextPage(), true);
    const ids: string[] = [];
    for await (const f of openai.files.list()) ids.push(f.id);
    assert.ok(ids.indexOf(b.id) < ids.indexOf(a.id));
    assert.equal((await openai.files.retrieve(a.id)).filename, 'a.jsonl');
    assert.deepEqual(await openai.files.delete(a.id), { id: a.id, object: 'file', deleted: true });
    await assert.rejects(openai.files.retrieve(a.id), (err: any) => err.status === 404);
    await assert.rejects(openai.files.delete(a.id), (err: any) => err.status === 404);
    await assert.rejects(
      openai.files.create({ file: await toFile(Buffer.from('{}\n'), 'x.jsonl'), purpose: 'fine-tune' }),
      (err: any) => err.status === 400 && /purpose must be 'batch'/.test(err.message),
    );
    const form = new FormData();
    form.set('purpose', 'batch');
    const noFile = await fetch(`${s.api.url}/openai/v1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME}` },
      body: form,
    });
    assert.equal(noFile.status, 400);
    assert.equal(((await noFile.json()) as any).error.code, 'invalid_request');
    for (const [what, init] of [
      ['no boundary', { headers: { 'content-type': 'multipart/form-data' }, body: 'x' }],
      ['no body', { headers: { 'content-type': 'multipart/form-data; boundary=b' } }],
      ['a boundary that never comes', { headers: { 'content-type': 'multipart/form-data; boundary=b' }, body: 'x' }],
    ] as const) {
      const res = await fetch(`${s.api.url}/openai/v1/files`, {
        method: 'POST',
        ...init,
        headers: { authorization: `Bearer ${ACME}`, ...init.headers },
      });
      assert.equal(res.status, 400, what);
    }
    // over MAX_FILE_BYTES: 413 while the client is still sending, nothing kept; cut off midway: nothing kept
    assert.equal(await rawUpload(s.api.url, 4 * MAX_FILE_BYTES), 413);
    assert.equal(await rawUpload(s.api.url, MAX_FILE_BYTES, 64 * 1024), 'cut');
    const db = new Database(itemStoreFile(s.config), { readonly: true });
    try {
      await waitFor('no upload left behind', () => {
        const uploading = db.prepare('SELECT COUNT(*) AS n FROM files WHERE bytes < 0').get() as { n: number };
        const orphans = db
          .prepare('SELECT COUNT(*) AS n FROM file_chunks WHERE file_id NOT IN (SELECT id FROM files)')
          .get() as { n: number };
        return uploading.n === 0 && orphans.n === 0;
      });
    } finally {
      db.close();
    }
    const badOffset = await s.call('GET', `/openai/v1/files/${b.id}/content?offset=%2B0.0`);
    assert.equal(badOffset.status, 400, 'an offset is a plain decimal');
    const listed = await s.call('GET', '/openai/v1/files');
    assert.ok(!listed.body.data.some((f: { id: string }) => f.id === a.id), 'a deleted file is not listed');
  });

  test('batches list newest first, paginated with after', async () => {
    const file = await openai.files.create({
      file: await toFile(Buffer.from('not json\n'), 'x.jsonl'),
      purpose: 'batch',
    });
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      made.push(
        (await openai.batches.create({ input_file_id: file.id, endpoint: '/v1/embeddings', completion_window: '24h' }))
          .id,
      );
    }
    const first = await openai.batches.list({ limit: 2 });
    assert.deepEqual(
      first.data.map((b) => b.id),
      [made[2], made[1]],
    );
    assert.equal(first.hasNextPage(), true);
    const second = await openai.batches.list({ limit: 2, after: made[1] });
    assert.equal(second.data[0]!.id, made[0]);
    const all: string[] = [];
    for await (const b of openai.batches.list({ limit: 2 })) all.push(b.id);
    assert.deepEqual(all.slice(0, 3), [made[2], made[1], made[0]]);
  });
});
