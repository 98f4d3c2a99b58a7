// Fault: the item store cannot write for a while in the middle of a batch, while Temporal is fine: SQLite on a disk
// that fills up (a small tmpfs of the test's own), and PostgreSQL stopped and started again. Items that fail on
// their own (poison: inputs the model overflows to NaN) fail exactly then, so the activity cannot record their
// failure: the workflow must record it once the store is back (on the full disk, where reads still work; a stopped
// PostgreSQL refuses reads too, so there items wait for it before they run). Items that succeed wait for the store instead of
// using up their attempts, although the outage outlasts their retry budget. Afterwards every invariant of
// test/helpers/faults.ts holds.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { batchWorkflowId } from '../../src/client/batch-client.js';
import type { Config } from '../../src/config.js';
import { PermanentItemFailure } from '../../src/contracts/item-failure-type.js';
import { startServer } from '../../src/server.js';
import type { ItemStore } from '../../src/stores/item-store.js';
import { openItemStore } from '../../src/stores/open-stores.js';
import { heldout, http } from '../helpers/data.js';
import { assertInvariants, figure, storedResults } from '../helpers/faults.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import {
  exitOf,
  outputOf,
  spawnBatchline,
  useTestTemporal,
  testConfig,
  testLog,
  waitFor,
} from '../helpers/temporal.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { progressQuery } from '../../workflows/messages.js';

const rows = heldout('digits');
const TOTAL = 600;
/** Every POISON_EVERY-th item is poison, so a window of in-flight items holds some whenever the store fails. */
const POISON_EVERY = 4;
/** float32's largest value in every pixel: valid input, on which the digits model computes NaN. */
const POISON = { input: rows[0]!.inputs.input.map(() => 3.4028234663852886e38) };
/** How long the store stays unable to write. */
const OUTAGE_MS = 6000;

const isPoison = (i: number) => i % POISON_EVERY === POISON_EVERY - 1;

interface Outage {
  name: string;
  /**
   * Whether reads still work during the outage (a full disk), so poison items get as far as failing and their
   * failures must be recorded by the workflow. A PostgreSQL that is down refuses reads too: items wait for it.
   */
  readsWork: boolean;
  /**
   * Brings up what the store needs: the processes' settings, fail() (the store cannot write from when it resolves)
   * and mend() (it can again once it resolves, OUTAGE_MS after fail() at the earliest).
   */
  setUp(): Promise<{
    env: Record<string, string>;
    fail(): Promise<void>;
    mend(): Promise<void>;
    tearDown(): Promise<void>;
  }>;
}

/** Resolves `ms` after `since`: how long a fault lasts, not a wait for something to happen. */
const lasting = (since: number, ms: number) => new Promise((r) => setTimeout(r, Math.max(0, since + ms - Date.now())));

const disk = mountTmpfs('store-outage', 32 << 20);
const OUTAGES: Outage[] = [
  {
    name: 'SQLite on a full disk',
    readsWork: true,
    async setUp() {
      if (typeof disk === 'string') throw new Error(disk);
      let since = 0;
      return {
        env: { DATA_DIR: disk.dir },
        fail: async () => {
          disk.fill();
          since = Date.now();
        },
        mend: async () => {
          await lasting(since, OUTAGE_MS);
          disk.free();
        },
        tearDown: async () => disk.unmount(),
      };
    },
  },
  {
    name: 'PostgreSQL stopped and started',
    readsWork: false,
    async setUp() {
      const pg: TestPostgres = await startPostgres();
      let since = 0;
      return {
        env: { DATABASE_URL: await pg.createDatabase() },
        fail: async () => {
          await pg.server.stop();
          since = Date.now();
        },
        mend: async () => {
          await lasting(since, OUTAGE_MS);
          await pg.server.restart(); // stop() first is a no-op: it is stopped
        },
        tearDown: () => pg.stop(),
      };
    },
  },
];

describe('fault: the item store cannot write mid-batch', () => {
  // Temporal's own data is elsewhere: only the item store fails.
  const env = useTestTemporal();

  for (const outage of OUTAGES) {
    const skip = outage.name.startsWith('SQLite') && typeof disk === 'string' ? disk : false;
    test(`${outage.name}: failures recorded once it is back, successes not failed by it`, { skip }, async () => {
      const { temporal, client } = env;
      const fault = await outage.setUp();
      const config: Config = testConfig(temporal.address, fault.env);
      const api = await startServer({ ...config, RATE_LIMIT_PER_MINUTE: 0 }, testLog);
      const store: ItemStore = await openItemStore(config);
      let worker: ChildProcess | undefined;
      try {
        worker = spawnBatchline('worker', config);
        const items = Array.from({ length: TOTAL }, (_, i) => ({
          inputs: isPoison(i) ? POISON : rows[i % rows.length]!.inputs,
        }));
        const res = await http(api.url, 'POST', '/v1/batches', {
          model: 'digits',
          items,
          // Two attempts a second apart: the outage outlasts an item's whole retry budget.
          options: { concurrency: 16, maxAttempts: 2, initialIntervalMs: 1000 },
        });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        const id = res.body.id as string;
        await waitFor('a fifth of the items', async () => {
          const c = await store.countResults(id);
          return c.succeeded + c.failed >= TOTAL / 5;
        });
        const handle = client.workflow.getHandle(batchWorkflowId(id));
        const failedBefore = (await handle.query(progressQuery)).counts.failed;
        await fault.fail();
        // While a full disk takes no writes the batch goes on failing poison items (asked of Temporal: the API needs
        // the store), which nobody can record yet.
        if (outage.readsWork) {
          await waitFor(
            'Temporal to fail poison items while the store is away',
            async () => (await handle.query(progressQuery)).counts.failed > failedBefore,
            60_000,
            100,
          );
        }
        const failedMeanwhile = (await handle.query(progressQuery)).counts.failed - failedBefore;
        await fault.mend();
        figure(`${outage.name}: items failed in Temporal while the store was away`, failedMeanwhile);

        const { counts, attempts } = await assertInvariants({ api: api.url, client, store }, id, TOTAL);
        const poison = Array.from({ length: TOTAL }, (_, i) => i).filter(isPoison);
        assert.equal(counts.failed, poison.length, 'exactly the poison items failed: the outage failed none');
        const results = await storedResults(store, id);
        for (const r of results) {
          if (isPoison(r.index)) {
            assert.equal(r.status, 'failed', `item ${r.index}`);
            assert.equal(r.error?.type, PermanentItemFailure.NonFiniteOutput, `item ${r.index}: its own failure`);
          } else assert.equal(r.status, 'succeeded', `item ${r.index}`);
        }
        figure(`${outage.name}: most attempts of a succeeded item`, Math.max(...[...attempts.values()]));
        // The failures nobody could record during the outage were recorded by the workflow's own activity.
        const history = (await handle.fetchHistory()).events ?? [];
        const recordings = history.filter(
          (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'recordItemFailures',
        ).length;
        figure(`${outage.name}: recordItemFailures calls`, recordings);
        if (outage.readsWork) assert.ok(recordings > 0, 'the workflow recorded the failures its activities could not');
      } catch (err) {
        throw new Error(`${(err as Error).message}\nworker output:\n${worker ? outputOf(worker) : ''}`, { cause: err });
      } finally {
        await fault.mend().catch(() => undefined);
        worker?.kill('SIGTERM');
        if (worker) await exitOf(worker);
        await store.close();
        await api.close();
        await fault.tearDown();
      }
    });
  }
});
