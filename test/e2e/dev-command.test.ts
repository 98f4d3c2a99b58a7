// `batchline dev` (what `npm start` runs): dev server, batch and interactive workers, API; Ctrl-C stops all, no orphans.
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { heldout, http } from '../helpers/data.js';
import {
  exitOf,
  freePort,
  outputOf,
  spawnBatchline,
  startTestTemporal,
  tempDir,
  testConfig,
  waitFor,
} from '../helpers/temporal.js';

/** Every descendant pid of `pid`, with its command line. */
function descendants(pid: number): { pid: number; cmd: string }[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return out
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      const [p, ...cmd] = l.trim().split(/\s+/);
      const child = { pid: Number(p), cmd: cmd.join(' ') };
      return [child, ...descendants(child.pid)];
    });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A free port whose successor is free too (the interactive worker's /metrics is WORKER_METRICS_PORT + 1). */
async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await freePort();
    const next = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      next.once('error', () => resolve(false));
      next.listen(port + 1, '0.0.0.0', () => resolve(true));
    });
    if (ok) {
      await new Promise((r) => next.close(r));
      return port;
    }
  }
}

/** Field `n` (1-based, as proc(5) numbers them) of /proc/<path>/stat; the command name may hold spaces. */
function statField(procPath: string, n: number): number {
  const stat = fs.readFileSync(`/proc/${procPath}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]);
}

/** A process's scheduling niceness (field 19). */
const niceness = (pid: number) => statField(String(pid), 19);

/** The scheduling policy (field 41: 0 SCHED_OTHER, 5 SCHED_IDLE) of each of a process's threads, deduplicated. */
function threadPolicies(pid: number): number[] {
  const policies = fs.readdirSync(`/proc/${pid}/task`).map((tid) => statField(`${pid}/task/${tid}`, 41));
  return [...new Set(policies)].sort();
}

/** A process's environment, from /proc. */
function environOf(pid: number): Record<string, string> {
  const entries = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return Object.fromEntries(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** A `batchline dev` on free ports with a data dir of its own, once its banner is out. */
async function startDev() {
  const [apiPort, temporalPort, uiPort, metricsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePortPair(),
  ];
  const dataDir = tempDir('dev');
  const config = testConfig(`127.0.0.1:${temporalPort}`, {
    PORT: String(apiPort),
    TEMPORAL_UI_PORT: String(uiPort),
    DATA_DIR: dataDir,
    WORKER_METRICS_PORT: String(metricsPort),
    LOG_LEVEL: 'info',
  });
  const dev = spawnBatchline('dev', config);
  const stack = { dev, config, dataDir, uiPort, metricsPort, base: `http://127.0.0.1:${apiPort}` };
  try {
    // The banner's last line: its lines are written one by one and may reach this process in separate reads.
    await waitFor('the banner', () => outputOf(dev).includes('Press Ctrl-C to stop.'), 120_000, 200).catch((err) => {
      throw new Error(`${err.message}\n${outputOf(dev)}`);
    });
  } catch (err) {
    killDev(stack);
    throw err;
  }
  return stack;
}

/** SIGKILL to `batchline dev` and every descendant, and its data dir removed: nothing outlives a test that failed. */
function killDev({ dev, dataDir }: { dev: ChildProcess; dataDir: string }): void {
  for (const c of [...descendants(dev.pid!), { pid: dev.pid! }]) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}

/** A batch of `n` digits submitted through the API, once it has completed. */
async function completedBatch(base: string, n: number) {
  const rows = heldout('digits').slice(0, n);
  const submitted = await http(base, 'POST', '/v1/batches', {
    model: 'digits',
    items: rows.map((r) => ({ inputs: r.inputs })),
  });
  assert.equal(submitted.status, 202);
  return waitFor('the batch to complete', async () => {
    const res = await http(base, 'GET', `/v1/batches/${submitted.body.id}`);
    return res.body.status === 'completed' ? res.body : undefined;
  });
}

test('batchline dev runs the dev server, a batch worker at nice 19 under SCHED_IDLE, an interactive worker and the API; SIGINT stops all', async () => {
  const stack = await startDev();
  const { dev, config, dataDir, uiPort, metricsPort, base } = stack;
  try {
    assert.match(outputOf(dev), new RegExp(`API\\s+${base}`));
    assert.match(outputOf(dev), new RegExp(`Temporal UI\\s+http://127.0.0.1:${uiPort}`));
    // The children's pino lines come out pretty-printed, each behind the name of the process it came from.
    assert.match(outputOf(dev), /^\[api\] \[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: API listening \{"url":/m, outputOf(dev));
    assert.doesNotMatch(outputOf(dev), /^\[\w+\] \{"level"/m, 'no raw pino JSON line');
    assert.ok(fs.existsSync(path.join(dataDir, 'temporal.db')), 'the dev server keeps its state in DATA_DIR');

    const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
    assert.equal(ui.status, 200, 'the Temporal UI answers');

    const rows = heldout('digits').slice(0, 10);
    const done = await completedBatch(base, rows.length);
    assert.equal(done.counts.succeeded, rows.length);

    const predicted = await http(base, 'POST', '/v1/predict', { model: 'digits', inputs: rows[0]!.inputs });
    assert.equal(predicted.status, 200, JSON.stringify(predicted.body));

    // Each worker's /metrics: its own counters, then the Temporal SDK's worker metrics from the same endpoint. The
    // batch worker ran the batch's items and polls only TASK_QUEUE; the interactive one ran the prediction.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^batch_items_finished_total\{[^}]*state="succeeded"[^}]*\} 10$/m);
    assert.match(metrics, /^temporal_\w+/m, 'the Temporal SDK exports its worker metrics');
    assert.ok(
      !metrics.includes(`task_queue="${config.INTERACTIVE_TASK_QUEUE}"`),
      'the batch worker leaves the interactive queue alone',
    );
    const interactive = await (await fetch(`http://127.0.0.1:${metricsPort + 1}/metrics`)).text();
    assert.ok(
      interactive.includes(`task_queue="${config.INTERACTIVE_TASK_QUEUE}"`),
      'SDK metrics of the interactive task queue',
    );
    assert.doesNotMatch(interactive, /^batch_items_finished_total\{/m, 'no batch item ran on the interactive worker');

    const children = descendants(dev.pid!);
    assert.ok(
      children.some((c) => /temporal server start-dev/.test(c.cmd)),
      'a dev server child',
    );
    const workers = children.filter((c) => /main\.ts worker$/.test(c.cmd));
    assert.equal(workers.length, 2, 'two worker children');
    assert.deepEqual(
      workers.map((w) => niceness(w.pid)).sort(),
      [0, 19],
      'the batch worker runs at nice 19, the interactive one at 0',
    );
    // Every thread, including those started after the switch (the SDK's, the workflow and inference threads).
    const batchWorker = workers.find((w) => niceness(w.pid) === 19)!;
    const interactiveWorker = workers.find((w) => niceness(w.pid) === 0)!;
    assert.ok(fs.readdirSync(`/proc/${batchWorker.pid}/task`).length > 10, 'the batch worker has started its threads');
    assert.deepEqual(threadPolicies(batchWorker.pid), [5], 'every thread of the batch worker runs under SCHED_IDLE');
    assert.deepEqual(threadPolicies(interactiveWorker.pid), [0], 'the interactive worker keeps the normal policy');
    // Both workers start with the settings of every worker (WORKER_PROCESS_ENV): two malloc arenas, a larger young
    // generation for V8, joined with NODE_OPTIONS this test runs under (if any), not replacing it; the API without.
    const inherited = process.env.NODE_OPTIONS?.trim();
    for (const w of [batchWorker, interactiveWorker]) {
      const env = environOf(w.pid);
      assert.equal(env.MALLOC_ARENA_MAX, '2', `worker ${w.pid}`);
      assert.match(env.NODE_OPTIONS ?? '', /^--max-semi-space-size=32( |$)/, `worker ${w.pid}`);
      if (inherited) assert.ok(env.NODE_OPTIONS!.endsWith(` ${inherited}`), `worker ${w.pid} keeps '${inherited}'`);
    }
    const apiChild = children.find((c) => /main\.ts api$/.test(c.cmd));
    assert.ok(apiChild, 'an API child');
    assert.doesNotMatch(environOf(apiChild.pid).NODE_OPTIONS ?? '', /max-semi-space-size/, 'the API keeps V8 defaults');

    dev.kill('SIGINT');
    assert.equal(await exitOf(dev), 0, outputOf(dev));
    // Helpers of helpers (tsx's esbuild service, when running from source) exit when their parent's pipe closes.
    await waitFor('every descendant to exit', () => children.every((c) => !alive(c.pid)), 10_000).catch(() => {
      const left = children.filter((c) => alive(c.pid));
      assert.fail(`orphans left running: ${left.map((c) => `${c.pid} ${c.cmd}`).join('; ')}`);
    });
  } finally {
    // A failed assertion skips the SIGINT above: its children (dev server, workers, API) must not outlive the test.
    killDev(stack);
  }
});

test('batchline dev starts a worker, the API or the dev server that died again; the batches after them complete', async () => {
  const stack = await startDev();
  const { dev, base } = stack;
  try {
    const childOf = (pattern: RegExp) => descendants(dev.pid!).filter((c) => pattern.test(c.cmd));
    const batchWorker = () => childOf(/main\.ts worker$/).find((w) => niceness(w.pid) === 19);
    /** SIGKILLs the process, waits for the supervisor to say it started it again, and returns the new one. */
    const killAndWait = async (name: string, find: () => { pid: number } | undefined) => {
      const old = find()!;
      assert.ok(old, `a ${name} child`);
      process.kill(old.pid, 'SIGKILL');
      await waitFor(`the ${name} to start again`, () => outputOf(dev).includes(`started the ${name} again`), 90_000);
      assert.match(outputOf(dev), new RegExp(`the ${name} exited with SIGKILL; starting it again in 1 s`));
      const next = await waitFor(`a new ${name} process`, () => {
        const p = find();
        return p && p.pid !== old.pid ? p : undefined;
      });
      return next;
    };

    const worker = await killAndWait('batch worker', batchWorker);
    // The new batch worker has the settings of the first: nice 19, every thread under SCHED_IDLE once started.
    await waitFor('its threads', () => fs.readdirSync(`/proc/${worker.pid}/task`).length > 10, 60_000);
    assert.deepEqual(threadPolicies(worker.pid), [5]);
    await killAndWait('API', () => childOf(/main\.ts api$/)[0]);
    await killAndWait('Temporal dev server', () => childOf(/temporal server start-dev/)[0]);

    // The API answers again, the batch worker runs a batch and the interactive worker a prediction, on the dev
    // server started again on the same state in DATA_DIR (the workers rode out its restart, or were started again).
    await waitFor('the API', async () => (await fetch(`${base}/healthz`)).ok, 60_000);
    const done = await completedBatch(base, 10);
    assert.equal(done.counts.succeeded, 10);
    const predicted = await http(base, 'POST', '/v1/predict', {
      model: 'digits',
      inputs: heldout('digits')[0]!.inputs,
    });
    assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
    assert.doesNotMatch(outputOf(dev), /\[dev\] stopping/, 'nothing stopped the supervisor');

    dev.kill('SIGINT');
    assert.equal(await exitOf(dev), 0, outputOf(dev));
  } finally {
    killDev(stack);
  }
});

test('batchline dev uses a Temporal server that already answers instead of starting one', async () => {
  const temporal = await startTestTemporal();
  const apiPort = await freePort();
  const dev = spawnBatchline('dev', testConfig(temporal.address, { PORT: String(apiPort) }));
  try {
    // The banner's last line: its lines are written one by one and may reach this process in separate reads.
    await waitFor('the banner', () => outputOf(dev).includes('Press Ctrl-C to stop.'), 120_000, 200).catch((err) => {
      throw new Error(`${err.message}\n${outputOf(dev)}`);
    });
    assert.match(outputOf(dev), /using the Temporal server already answering/);
    assert.equal(descendants(dev.pid!).filter((c) => /temporal server/.test(c.cmd)).length, 0, 'no second dev server');
    dev.kill('SIGTERM');
    assert.equal(await exitOf(dev), 0);
    assert.equal(temporal.server.child.exitCode, null, 'the existing server is left running');
  } finally {
    dev.kill('SIGKILL');
    await temporal.stop();
  }
});
