// The dashboard (/ui) driven in real headless Chromium (Debian's, through puppeteer-core) against the real stack:
// the dev server, a worker running the real model behind a gate that holds marked items, and the API with two
// tenants. The page is used as a person would: the API key typed in, a batch opened from the list, the buttons
// clicked; what the buttons did is checked through the API. Screenshots go to data/test-artifacts/dashboard/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { findChromium } from '../../scripts/chromium.mjs';
import { heldout } from '../helpers/data.js';
import { waitFor } from '../helpers/temporal.js';
import { ACME, GLOBEX, HELD, startOnlineStack, type OnlineStack } from './online-stack.js';

const ARTIFACTS = path.resolve('data', 'test-artifacts', 'dashboard');
const WAIT_MS = 60_000;
const rows = heldout('digits');
const digit = (i: number) => rows[i % rows.length]!.inputs;
/** Every pixel the largest float32: accepted, and the digits model overflows to NaN on it (a poison item). */
const POISON = { input: new Array<number>(64).fill(3.4028235e38) };

describe('the dashboard in headless Chromium against the real stack', () => {
  let s: OnlineStack;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    const executablePath = findChromium();
    assert.ok(
      executablePath,
      'Chromium was not found: run `node scripts/setup.mjs --test-tools` (or `node scripts/chromium.mjs --install`)',
    );
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    s = await startOnlineStack();
    browser = await puppeteer.launch({
      executablePath,
      headless: true, // Chromium's new headless mode (--headless=new)
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 1000 });
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) pageErrors.push(msg.text());
    });
  });

  after(async () => {
    s?.gate.open();
    await browser?.close();
    await s?.close();
  });

  async function screenshot(t: TestContext, name: string) {
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    t.diagnostic(`screenshot: ${path.relative(process.cwd(), file)}`);
  }

  const text = (selector: string) => page.$eval(selector, (el) => el.textContent ?? '');
  /** Waits until the element's text is `expected` (or matches it). */
  async function waitText(selector: string, expected: string | RegExp) {
    await page
      .waitForFunction(
        (sel, want, isRegExp) => {
          const t = (globalThis as any).document.querySelector(sel)?.textContent ?? '';
          return isRegExp ? new RegExp(want).test(t) : t === want;
        },
        { timeout: WAIT_MS },
        selector,
        typeof expected === 'string' ? expected : expected.source,
        typeof expected !== 'string',
      )
      .catch(async (err: Error) => {
        const now = await text(selector).catch(() => '(no such element)');
        throw new Error(`${selector} never read ${String(expected)} (it reads '${now}'): ${err.message}`);
      });
  }

  async function batchOf(body: unknown): Promise<string> {
    const created = await s.call('POST', '/v1/batches', body);
    assert.equal(created.status, 202, JSON.stringify(created.body));
    return created.body.id as string;
  }

  test('the page and its files are public, typed, and under a strict Content-Security-Policy', async () => {
    for (const [file, type] of [
      ['/ui', 'text/html'],
      ['/ui/app.js', 'text/javascript'],
      ['/ui/style.css', 'text/css'],
      ['/ui/config.json', 'application/json'],
    ] as const) {
      const res = await fetch(`${s.api.url}${file}`); // no API key
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get('content-type') ?? '', new RegExp(`^${type}`), file);
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/, file);
      assert.doesNotMatch(res.headers.get('content-security-policy') ?? '', /unsafe-inline/, file);
    }
    assert.equal((await fetch(`${s.api.url}/ui/../package.json`)).status, 401, 'no other file is served');
    assert.equal((await fetch(`${s.api.url}/ui/secrets.js`)).status, 401, 'an unknown name falls through to auth');
    assert.equal((await fetch(`${s.api.url}/v1/batches`)).status, 401, 'the data still needs a key');
  });

  test('key, list, a running batch live: counts, pause and resume by the buttons, the total reached', async (t) => {
    s.gate.shut();
    const n = 40;
    const heldAt = [0, 1, 2];
    const id = await batchOf({
      model: 'digits',
      items: Array.from({ length: n }, (_, i) => ({
        id: `d${i}`,
        inputs: heldAt.includes(i) ? { input: [HELD, ...digit(i).input.slice(1)] } : digit(i),
      })),
      options: { concurrency: 4 },
    });

    await page.goto(`${s.api.url}/ui`);
    await waitText('#notice', /API key/); // asked for a key: the API refused the list without one
    await page.type('#api-key', ACME);
    await page.click('#key-save');
    await page.waitForSelector(`#batches a[href="#/batches/${id}"]`, { timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('batchline.apiKey')), ACME);
    await screenshot(t, '1-batches');

    await page.click(`#batches a[href="#/batches/${id}"]`);
    await page.waitForSelector('#view-batch[data-ready="true"]', { timeout: WAIT_MS });
    await waitText('#count-succeeded', String(n - heldAt.length));
    await waitText('#count-running', String(heldAt.length));
    await waitText('#batch-status', 'running');
    assert.match(await page.$eval('#temporal-link', (a) => a.getAttribute('href')), /\/workflows\/batch-/);
    await screenshot(t, '2-batch-running');

    await page.click('#pause');
    await waitFor(
      'the API to report the batch paused',
      async () => (await s.call('GET', `/v1/batches/${id}`)).body.paused === true,
    );
    await waitText('#batch-status', 'paused');
    await screenshot(t, '3-batch-paused');
    await page.click('#resume');
    await waitFor(
      'the API to report the batch resumed',
      async () => (await s.call('GET', `/v1/batches/${id}`)).body.paused === false,
    );
    await waitText('#batch-status', 'running');

    // A new concurrency, typed and set with the button: the batch runs with it.
    await waitFor(
      'the Set button to be enabled',
      async () => !(await page.$eval('#set-concurrency', (b) => (b as unknown as { disabled: boolean }).disabled)),
    );
    await page.$eval('#concurrency', (input) => void ((input as unknown as { value: string }).value = ''));
    await page.type('#concurrency', '6');
    await page.click('#set-concurrency');
    await waitFor(
      'the API to report concurrency 6',
      async () => (await s.call('GET', `/v1/batches/${id}`)).body.concurrency === 6,
    );
    await waitText('#stat-concurrency', '6');

    // The item map: the first block holds the held items; clicking it lists them.
    const box = await page.$eval('#item-map', (c) => {
      const r = c.getBoundingClientRect();
      return { x: r.left, y: r.top };
    });
    await page.mouse.click(box.x + 2, box.y + 2);
    await page.waitForSelector('#block-panel:not([hidden]) #block-items tr', { timeout: WAIT_MS });
    assert.match(await text('#block-items'), /d0running/);

    s.gate.open();
    await waitText('#stat-done', `${n} / ${n}`);
    await waitText('#batch-status', 'completed');
    await waitText('#stat-percent', '100%');
    await screenshot(t, '4-batch-completed');
  });

  test('a failed item: its error in the failures list and in the item view', async (t) => {
    const id = await batchOf({
      model: 'digits',
      items: [
        { id: 'ok-1', inputs: digit(1) },
        { id: 'poison', inputs: POISON },
        { id: 'ok-2', inputs: digit(2) },
      ],
      options: { maxAttempts: 2 },
    });
    await page.goto(`${s.api.url}/ui#/batches/${id}`); // the key is kept for the tab
    await waitText('#batch-status', 'completed');
    await waitText('#failures', /NonFiniteOutput/);
    await page.$eval('#failures tr', (tr) => (tr as any).click()); // in one step: the rows may be redrawn meanwhile
    await page.waitForSelector('#item-view:not([hidden])', { timeout: WAIT_MS });
    await waitText('#item-id', 'poison');
    assert.equal(await text('#item-error-type'), 'NonFiniteOutput');
    assert.match(await text('#item-error-message'), /non-finite output/);
    assert.equal(await text('#item-status'), 'failed');
    assert.deepEqual(JSON.parse(await text('#item-inputs')), POISON, 'the inputs it was submitted with');
    await screenshot(t, '5-failed-item');
  });

  test("another tenant's key shows only its own batches; the predictions panel lists tasks or says it cannot", async (t) => {
    const predicted = await s.call('POST', '/v1/predict', { model: 'digits', inputs: digit(3) });
    assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
    const taskId = predicted.body.taskId as string;
    const listed = await s.call('GET', '/v1/tasks?limit=5');

    await page.goto(`${s.api.url}/ui`);
    await page.waitForSelector('#view-list[data-ready="true"]', { timeout: WAIT_MS });
    assert.ok((await page.$$('#batches tr')).length >= 2, 'acme sees its batches');
    if (listed.status === 200) {
      await waitText('#tasks', new RegExp(taskId));
    } else {
      t.diagnostic(`GET /v1/tasks answers ${listed.status}: the panel must say it is not available`);
      await waitText('#tasks-unavailable', /^Not available/);
    }
    await screenshot(t, '6-list-with-predictions');

    await page.click('#key-forget');
    await page.type('#api-key', GLOBEX);
    await page.click('#key-save');
    await page.waitForSelector('#view-list[data-ready="true"]', { timeout: WAIT_MS });
    await page.waitForSelector('#batches-empty:not([hidden])', { timeout: WAIT_MS });
    assert.equal((await page.$$('#batches tr')).length, 0, "globex sees none of acme's batches");
    assert.deepEqual(pageErrors, [], 'no script error or policy violation on the page');
  });
});
