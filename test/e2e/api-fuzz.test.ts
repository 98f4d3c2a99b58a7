// Property-based test of the HTTP API against its own OpenAPI document: Schemathesis reads GET /openapi.json from
// the real stack (dev server, worker, API with an API key) and sends generated requests to every documented
// operation, valid and invalid, and every method a documented path does not declare. The run fails on any 5xx,
// on any answer the document does not describe (its status, content type, headers or body), and on a request the
// document refuses that the API accepts.
//
// Bounded, so it takes a minute or two on two cores: few examples per operation (API_FUZZ_MAX_EXAMPLES, default
// 10), one worker, a timeout per request, and no stateful phase (it chains calls without end: submits batches and
// follows their streams). Streams and waits are bounded by the data the path parameters are pinned to: `id` is a
// batch that has ended, so `/results?follow=true` and `/events` end with it (each only replays what is stored);
// `taskId` a finished task; a sync prediction waits at most PREDICT_MAX_TIMEOUT_MS, set to a few seconds here. The
// seed is fixed (API_FUZZ_SEED picks another) so a failure is reproduced by running the file again.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pythonTools } from '../../scripts/python-tools.mjs';
import { buildOpenApiDocument } from '../../src/api/openapi.js';
import { API_ROUTES } from '../../src/api/routes/index.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { startWorker, type StartedWorker } from '../../src/worker.js';
import { heldout, http } from '../helpers/data.js';
import {
  quietTemporalLogs,
  startTestTemporal,
  tempDir,
  testConfig,
  testLog,
  waitFor,
  workflowBundle,
  type TestTemporal,
} from '../helpers/temporal.js';

const KEY = 'key-fuzz-aaaaaaaaaaaaaaaa';
const asClient = { authorization: `Bearer ${KEY}` };
const MAX_EXAMPLES = process.env.API_FUZZ_MAX_EXAMPLES ?? '10';
const SEED = process.env.API_FUZZ_SEED ?? '20261202';
/** Longest one request may take before the run counts it as an error (a stream that does not end, a hung wait). */
const REQUEST_TIMEOUT_S = 10;
/** Longest the whole run may take before it is killed and the test fails. */
const RUN_DEADLINE_MS = 5 * 60_000;

/**
 * The checks, by the names of the Schemathesis version the tools venv pins: no 5xx; status, content type, headers
 * and body as documented; 405 with Allow for an undeclared method, and OPTIONS' Allow listing the declared ones; a
 * request the document refuses is refused (the document is not stricter than the code).
 */
const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
  'unsupported_method',
  'allow_header_conformance',
  'negative_data_rejection',
];

const row = heldout('digits')[0]!.inputs.input;

interface Interaction {
  request: { method: string; uri: string };
  response?: { status_code: number };
}

interface RunReport {
  /** Every request sent, by operation label (`GET /v1/batches/{id}`). */
  requests: Map<string, Interaction[]>;
}

/** The requests of a run, from its NDJSON report (one event a line; each scenario records its interactions). */
function readReport(dir: string): RunReport {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ndjson'));
  assert.equal(files.length, 1, `one NDJSON report in ${dir}: ${files}`);
  const requests = new Map<string, Interaction[]>();
  for (const line of fs.readFileSync(path.join(dir, files[0]!), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const recorder = JSON.parse(line).ScenarioFinished?.recorder;
    if (!recorder) continue;
    const label = String(recorder.label);
    const interactions = Object.values(recorder.interactions ?? {}) as Interaction[];
    requests.set(label, [...(requests.get(label) ?? []), ...interactions]);
  }
  return { requests };
}

/** Runs a command to its end or the deadline (then kills it); its output and exit code. */
function run(
  command: string,
  args: string[],
  cwd: string,
  deadlineMs: number,
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let output = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

describe('the API against its OpenAPI document, with Schemathesis (property-based)', () => {
  let temporal: TestTemporal;
  let worker: StartedWorker;
  let api: StartedServer;
  let schemathesis: string;
  let ended: string;
  let task: string;

  before(async () => {
    quietTemporalLogs();
    // The tools venv is made once per machine (pip, minutes the first time); the stack starts meanwhile.
    const tools = pythonTools({ log: (line) => testLog.info(line) });
    temporal = await startTestTemporal();
    const config = testConfig(temporal.address, {
      API_KEYS: `${KEY}=fuzz`,
      RATE_LIMIT_PER_MINUTE: '0', // every generated request reaches its route, none is a 429
      PREDICT_TIMEOUT_MS: '2000',
      PREDICT_MAX_TIMEOUT_MS: '5000',
    });
    [worker, api] = await Promise.all([
      workflowBundle().then((bundle) => startWorker(config, testLog, { workflowBundle: bundle })),
      startServer(config, testLog),
    ]);
    const call = (method: string, route: string, body?: unknown) => http(api.url, method, route, body, asClient);

    // What the path parameters are pinned to: a batch that has ended (items 'a' and 'b') and a finished task.
    const submitted = await call('POST', '/v1/batches', {
      model: 'digits',
      items: [
        { id: 'a', inputs: { input: row } },
        { id: 'b', inputs: { input: row } },
      ],
    });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    ended = submitted.body.id;
    const started = await call('POST', '/v1/predict/async', { model: 'digits', inputs: { input: row } });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    task = started.body.taskId;
    await waitFor(
      'the batch to complete',
      async () => (await call('GET', `/v1/batches/${ended}`)).body.status === 'completed',
    );
    await waitFor(
      'the task to succeed',
      async () => (await call('GET', `/v1/tasks/${task}`)).body.status === 'succeeded',
    );
    schemathesis = path.join((await tools).bin, 'schemathesis');
  });

  after(async () => {
    await api?.close();
    await worker?.shutdown();
    await temporal?.stop();
  });

  test(
    'no 5xx and no answer the document does not describe, on every documented operation',
    { timeout: RUN_DEADLINE_MS + 60_000 },
    async (t) => {
      const dir = tempDir('api-fuzz');
      const reports = path.join(dir, 'reports');
      const configFile = path.join(dir, 'schemathesis.toml');
      fs.writeFileSync(
        configFile,
        [
          '[parameters]',
          `"path.id" = "${ended}"`,
          `"path.itemId" = "a"`,
          `"path.taskId" = "${task}"`,
          `"path.name" = "digits"`,
          '',
        ].join('\n'),
      );
      const args = [
        '--config-file',
        configFile,
        'run',
        `${api.url}/openapi.json`,
        '--checks',
        CHECKS.join(','),
        '--phases',
        'examples,coverage,fuzzing',
        '--max-examples',
        MAX_EXAMPLES,
        '--seed',
        SEED,
        '--request-timeout',
        String(REQUEST_TIMEOUT_S),
        '--workers',
        '1',
        '--header',
        `Authorization: Bearer ${KEY}`,
        '--generation-database',
        'none',
        '--report',
        'ndjson',
        '--report-dir',
        reports,
        '--no-color',
      ];
      const startedAt = Date.now();
      const result = await run(schemathesis, args, dir, RUN_DEADLINE_MS);
      const seconds = (Date.now() - startedAt) / 1000;
      assert.ok(!result.timedOut, `Schemathesis did not finish within ${RUN_DEADLINE_MS / 1000} s:\n${result.output}`);

      // What the run sent, printed before any verdict, so a failing run says its size too.
      const { requests } = readReport(reports);
      const all = [...requests.values()].flat();
      const statuses = new Map<number, number>();
      for (const r of all)
        statuses.set(r.response?.status_code ?? 0, (statuses.get(r.response?.status_code ?? 0) ?? 0) + 1);
      t.diagnostic(
        `figure: ${all.length} requests in ${seconds.toFixed(1)} s (seed ${SEED}, ${MAX_EXAMPLES} examples); statuses ` +
          [...statuses]
            .sort(([a], [b]) => a - b)
            .map(([s, n]) => `${s}:${n}`)
            .join(' '),
      );
      assert.equal(result.code, 0, `Schemathesis found failures (seed ${SEED}):\n${result.output}`);

      // The run reached every documented operation, and the probes of undeclared methods were among its requests.
      const documented = Object.entries(buildOpenApiDocument(API_ROUTES).paths ?? {}).flatMap(([p, item]) =>
        Object.keys(item ?? {}).map((m) => `${m.toUpperCase()} ${p}`),
      );
      assert.equal(documented.length, API_ROUTES.length);
      // Schemathesis never calls the operation that serves the document it loaded (its loader skips it:
      // `_serves_schema_document`); the unit test of the document covers GET /openapi.json.
      const untested = documented.filter((op) => op !== 'GET /openapi.json' && (requests.get(op) ?? []).length === 0);
      assert.deepEqual(untested, [], 'every documented operation got requests');
      assert.ok(
        all.some((r) => r.response?.status_code === 405),
        'undeclared methods were probed (405 answers)',
      );
      assert.ok(!all.some((r) => (r.response?.status_code ?? 0) >= 500), 'no 5xx');
    },
  );
});
