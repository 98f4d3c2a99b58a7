// The batchline client commands against the real stack (dev server, worker, API with API keys), each run as a
// child process through tsx as production runs the command: submit from a file and from stdin with progress,
// results into a file, failures and their exit code, ls filters, status --json, steering, predict, the one-line
// errors (404, connection refused, 401, usage) with their exit codes, and the progress bar on a TTY against plain
// lines in a pipe.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { heldout } from '../helpers/data.js';
import { freePort, ROOT, tempDir, waitFor } from '../helpers/temporal.js';
import { ACME, HELD, startOnlineStack, type OnlineStack } from './online-stack.js';

const MAIN = path.join(ROOT, 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');
const DIGITS = path.join(ROOT, 'examples', 'digits.jsonl');
/** examples/README.md: the label the digits model gives each row of examples/digits.jsonl. */
const EXPECTED_LABELS: Record<string, string> = {
  'heldout-1': '0',
  'heldout-2': '9',
  'heldout-3': '1',
  'heldout-4': '5',
  'heldout-5': '6',
  'heldout-6': '7',
  'heldout-7': '9',
  'heldout-8': '1',
  'heldout-12': '2',
  'heldout-17': '4',
  'heldout-18': '8',
  'heldout-30': '3',
};
const rows = heldout('digits').map((r) => r.inputs.input);
/** Every pixel the largest float32: accepted, and the digits model overflows to NaN on it (a poison item). */
const POISON = new Array<number>(64).fill(3.4028235e38);
const BATCH_ID = /^[0-9a-f]{20}$/;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  env?: Record<string, string>;
  stdin?: string;
  /** A file that receives stdout (as `> file` would), instead of collecting it. */
  stdoutFile?: string;
}

describe('batchline client commands', () => {
  let stack: OnlineStack;
  let env: Record<string, string>;

  before(async () => {
    stack = await startOnlineStack();
    env = { BATCHLINE_URL: stack.api.url, BATCHLINE_API_KEY: ACME };
  });
  after(async () => {
    await stack?.close();
  });

  /** The environment a child gets: the test's, tsx's tsconfig, and the client's two variables. */
  const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...process.env,
    TSX_TSCONFIG_PATH: path.join(ROOT, 'tsconfig.json'),
    ...env,
    ...extra,
  });

  /** Starts `batchline <args>` from source; `done` resolves with its exit code and output. */
  function start(args: string[], options: RunOptions = {}) {
    const out = options.stdoutFile ? fs.openSync(options.stdoutFile, 'w') : 'pipe';
    const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
      cwd: ROOT,
      env: childEnv(options.env),
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', out, 'pipe'],
    });
    if (typeof out === 'number') fs.closeSync(out);
    const run: Run = { code: null, stdout: '', stderr: '' };
    child.stdout?.on('data', (b: Buffer) => (run.stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (run.stderr += b.toString()));
    if (options.stdin !== undefined) child.stdin!.end(options.stdin);
    const done = new Promise<Run>((resolve) =>
      child.once('close', (code) => {
        run.code = code;
        resolve(run);
      }),
    );
    return { run, done };
  }

  const cli = (args: string[], options: RunOptions = {}) => start(args, options).done;
  const ndjson = (items: unknown[]) => items.map((i) => JSON.stringify(i)).join('\n') + '\n';
  const describeRun = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  test('submit FILE --follow prints the id, plain progress lines in a pipe, the final counts, and exits 0', async () => {
    const r = await cli(['submit', DIGITS, '--model', 'digits', '--follow']);
    assert.equal(r.code, 0, describeRun(r));
    const [id, summary] = r.stdout.trim().split('\n');
    assert.match(id!, BATCH_ID);
    assert.equal(summary, `batch ${id} completed: 12 succeeded, 0 failed, 0 canceled of 12`);
    assert.match(
      r.stderr,
      new RegExp(`^batch ${id} completed 12/12 \\(100%\\) [\\d.]+ items/s ETA \\S+ failed 0$`, 'm'),
    );
    assert.doesNotMatch(r.stderr, /[█░]|\x1b\[/, 'no bar and no terminal escapes in a pipe');
    const batch = await stack.call('GET', `/v1/batches/${id}`);
    assert.equal(batch.body.counts.succeeded, 12);
  });

  test('submit - reads stdin; results --follow > file has one line per item with the labels of examples/README.md', async () => {
    const submitted = await cli(['submit', '-', '--model', 'digits', '--chunk', '4', '--json'], {
      stdin: fs.readFileSync(DIGITS, 'utf8'),
    });
    assert.equal(submitted.code, 0, describeRun(submitted));
    const created = JSON.parse(submitted.stdout);
    assert.match(created.id, BATCH_ID);
    assert.equal(created.total, 12);

    const file = path.join(tempDir('cli'), 'out.jsonl');
    const r = await cli(['results', created.id, '--follow'], { stdoutFile: file });
    assert.equal(r.code, 0, describeRun(r));
    const lines = fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 12);
    assert.deepEqual(
      Object.fromEntries(lines.map((l) => [l.id, l.result.label])),
      EXPECTED_LABELS,
      'every item once, with its label',
    );

    const again = await cli(['results', created.id, '--cursor', '10']);
    assert.equal(again.code, 0, describeRun(again));
    assert.deepEqual(
      again.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).index),
      [10, 11],
      '--cursor resumes at that item index, in index order',
    );
  });

  test('a batch with a poison item: --follow exits 1, results --failed lists it alone and exits 1', async () => {
    const items = [
      { inputs: { input: rows[0] } },
      { id: 'poison', inputs: { input: POISON } },
      { inputs: { input: rows[1] } },
    ];
    const r = await cli(['submit', '-', '--model', 'digits', '--follow'], { stdin: ndjson(items) });
    assert.equal(r.code, 1, describeRun(r));
    const [id, summary] = r.stdout.trim().split('\n');
    assert.equal(summary, `batch ${id} completed: 2 succeeded, 1 failed, 0 canceled of 3`);

    const failed = await cli(['results', id!, '--failed']);
    assert.equal(failed.code, 1, describeRun(failed));
    const lines = failed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => [l.id, l.status, l.error.type]),
      [['poison', 'failed', 'NonFiniteOutput']],
    );

    const status = await cli(['status', id!]);
    assert.equal(status.code, 1, 'status of a batch that ended with a failure exits 1');
    assert.match(status.stdout, /1 failed/);
  });

  test('status --json parses; ls filters by status and model', async () => {
    const submitted = await cli(['submit', DIGITS, '--model', 'digits', '--follow', '--json']);
    assert.equal(submitted.code, 0, describeRun(submitted));
    const { id } = JSON.parse(submitted.stdout);

    const status = await cli(['status', id, '--json']);
    assert.equal(status.code, 0, describeRun(status));
    const batch = JSON.parse(status.stdout);
    assert.equal(batch.id, id);
    assert.equal(batch.status, 'completed');
    assert.deepEqual(batch.counts, { pending: 0, running: 0, succeeded: 12, failed: 0, canceled: 0 });

    // Visibility lags a moment behind the workflow's end: wait for the listing to show it completed.
    const listed = await waitFor('the batch in ls --status completed --model digits', async () => {
      const r = await cli(['ls', '--status', 'completed', '--model', 'digits', '--json', '--all']);
      assert.equal(r.code, 0, describeRun(r));
      const page = JSON.parse(r.stdout);
      return page.batches.some((b: { id: string }) => b.id === id) ? page : undefined;
    });
    assert.ok(
      listed.batches.every((b: { status: string; model: string }) => b.status === 'completed' && b.model === 'digits'),
    );
    const other = JSON.parse((await cli(['ls', '--model', 'breast-cancer', '--json'])).stdout);
    assert.deepEqual(other.batches, [], 'no breast-cancer batch');
    const running = JSON.parse((await cli(['ls', '--status', 'running', '--json'])).stdout);
    assert.ok(!running.batches.some((b: { id: string }) => b.id === id), 'not among the running');

    const table = await cli(['ls', '--model', 'digits', '--limit', '1']);
    assert.equal(table.code, 0, describeRun(table));
    assert.match(table.stdout, /^ID\s+STATUS\s+MODEL\s+TOTAL\s+FAILED\s+CREATED\n[0-9a-f]{20}\s+\w+\s+digits/);
    assert.match(table.stderr, /^more batches: batchline ls --cursor \S+$/m, 'a page of one says how to get the next');
  });

  test('pause, resume and cancel steer a running batch; a followed batch that is canceled exits 1; 409 after the end', async () => {
    stack.gate.shut();
    const items = [{ inputs: { input: [HELD, ...rows[0]!.slice(1)] } }, { inputs: { input: rows[1] } }];
    const follow = start(['submit', '-', '--model', 'digits', '--follow'], { stdin: ndjson(items) });
    const id = await waitFor(
      'the id from submit --follow',
      () => BATCH_ID.exec(follow.run.stdout.split('\n')[0]!)?.[0],
    );
    await waitFor('the held item to reach the gate', () => stack.gate.held === 1);

    const paused = await cli(['pause', id]);
    assert.equal(paused.code, 0, describeRun(paused));
    assert.equal(paused.stdout, `paused batch ${id}\n`);
    await waitFor(
      'status --json to say paused',
      async () => JSON.parse((await cli(['status', id, '--json'])).stdout).paused,
    );
    const resumed = await cli(['resume', id, '--json']);
    assert.deepEqual(JSON.parse(resumed.stdout), { id, action: 'resume', accepted: true });
    await waitFor(
      'status --json to say not paused',
      async () => !JSON.parse((await cli(['status', id, '--json'])).stdout).paused,
    );

    const canceled = await cli(['cancel', id]);
    assert.equal(canceled.code, 0, describeRun(canceled));
    stack.gate.open(); // the held item may finish now; the batch is canceled either way
    const r = await follow.done;
    assert.equal(r.code, 1, `a canceled batch exits 1\n${describeRun(r)}`);
    assert.match(r.stdout, new RegExp(`^batch ${id} canceled: `, 'm'));

    const late = await cli(['retry-failed', id]);
    assert.equal(late.code, 3, describeRun(late));
    assert.match(late.stderr, /^batchline: the API answered 409 conflict: .+\n$/, "the API's own message, one line");
  });

  test('predict MODEL --input JSON answers the label; --json the whole answer', async () => {
    const row = heldout('digits')[0]!;
    const r = await cli(['predict', 'digits', '--input', JSON.stringify(row.inputs)]);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, new RegExp(`^${row.expected.labelName}\\t\\(digits v1, task [0-9a-f]+\\)\\n$`));
    const j = await cli(['predict', 'digits', '--input', JSON.stringify(row.inputs), '--json']);
    assert.equal(JSON.parse(j.stdout).result.label, row.expected.labelName);
    const bad = await cli(['predict', 'digits', '--input', '{"input":[1,2,3]}']);
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /^batchline: the API answered 400 invalid_request: .*input.*\n$/);
  });

  test('errors are one line with their exit code: 404, connection refused, 401, usage', async () => {
    // a file with a line the model cannot take: the API's 400 names the line, nothing is queued
    const bad = await cli(['submit', '-', '--model', 'digits'], {
      stdin: ndjson([{ inputs: { input: new Array(64).fill(1) } }, { inputs: { input: [1, 2, 3] } }]),
    });
    assert.equal(bad.code, 3, describeRun(bad));
    assert.match(bad.stderr, /^batchline: the API answered 400 invalid_request: .*line/);
    assert.equal(bad.stderr.split('\n').filter(Boolean).length, 1, 'one line');

    const unknown = await cli(['status', '0123456789abcdef0123']);
    assert.equal(unknown.code, 3);
    assert.equal(
      unknown.stderr,
      "batchline: batch '0123456789abcdef0123' not found (404): no such id for this API key\n",
    );

    const port = await freePort();
    const refused = await cli(['ls'], { env: { BATCHLINE_URL: `http://127.0.0.1:${port}` } });
    assert.equal(refused.code, 3);
    assert.equal(
      refused.stderr,
      `batchline: cannot reach the batchline API at http://127.0.0.1:${port} (connection refused); BATCHLINE_URL sets its address\n`,
    );

    const badKey = await cli(['ls'], { env: { BATCHLINE_API_KEY: 'key-not-a-real-one' } });
    assert.equal(badKey.code, 3);
    assert.equal(
      badKey.stderr,
      `batchline: the API at ${stack.api.url} refused the API key (401); set BATCHLINE_API_KEY to a valid key\n`,
    );
    const noKey = await cli(['ls'], { env: { BATCHLINE_API_KEY: '' } });
    assert.equal(noKey.code, 3);
    assert.match(noKey.stderr, /needs an API key \(401\); set BATCHLINE_API_KEY\n$/);

    for (const args of [
      ['submit', DIGITS],
      ['submit', DIGITS, '--model', 'digits', '--chunk', 'x'],
      ['status'],
      ['ls', '--status', 'nope'],
    ]) {
      const usage = await cli(args);
      assert.equal(usage.code, 2, `${args.join(' ')}: ${describeRun(usage)}`);
      assert.match(usage.stderr, /^error: /);
    }
    const missing = await cli(['submit', path.join(ROOT, 'no-such.jsonl'), '--model', 'digits']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^batchline: cannot read .*no-such\.jsonl: ENOENT\n$/);
  });

  test('a TTY gets the progress bar (under script(1)); a pipe gets none', async (t) => {
    let script: string;
    try {
      script = execFileSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).trim();
    } catch {
      t.skip('script(1) from util-linux is not installed (Debian: apt-get install bsdutils)');
      return;
    }
    const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    const command = [process.execPath, '--import', TSX, MAIN, 'submit', DIGITS, '--model', 'digits', '--follow']
      .map(quote)
      .join(' ');
    const child = spawn(script, ['-qec', command, '/dev/null'], {
      cwd: ROOT,
      env: childEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0, output);
    assert.match(output, /█{30} 100% \| 12\/12 items \| [\d.]+ items\/s/, `the full bar at the end\n${output}`);
    assert.match(output, /completed: 12 succeeded, 0 failed, 0 canceled of 12/);
    assert.doesNotMatch(output, /^batch \S+ completed 12\/12 \(100%\)/m, 'no plain progress line on a TTY');
  });
});
