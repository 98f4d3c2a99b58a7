// One batch, live. What keeps it fast at any size and rate:
// - the event stream is asked for progress and the end only (`items=false`): about one small event a second, and no
//   reading of the batch's log from its first event, whatever the batch's size;
// - the page is drawn at most once per animation frame, and only the parts whose data changed;
// - the item map (a few hundred blocks) and the failures (one page) are fetched on a timer, every MAP_EVERY_MS, one
//   request at a time, never per event; no DOM node exists per item of the batch, only per row shown.
import { call, followEvents } from './api.js';
import { blockAt, drawChart, drawItemMap } from './draw.js';
import { $, badge, between, duration, notice, num, row, setText, time } from './dom.js';

const MAP_EVERY_MS = 1500;
const BATCH_EVERY_MS = 3000;
const SAMPLE_EVERY_MS = 1000;
const MAX_SAMPLES = 300;
const MAP_BLOCKS = 500;
/** An item's inputs are shown up to this many characters of their JSON (an image or a long text can be large). */
const MAX_INPUTS_SHOWN = 10_000;
const BLOCK_PAGE = 200;
const FAILURES_PAGE = 100;

export function openBatch(id, config) {
  const base = `/v1/batches/${encodeURIComponent(id)}`;
  const stop = new AbortController();
  const s = {
    batch: undefined,
    map: undefined,
    samples: [],
    failures: [],
    failuresFetchedFor: -1,
    failuresStale: true,
    dirty: new Set(),
    frame: 0,
    mapBusy: false,
    mapAgain: false,
    ended: false,
  };
  const timers = [];

  const schedule = (...parts) => {
    parts.forEach((p) => s.dirty.add(p));
    if (!s.frame) s.frame = requestAnimationFrame(render);
  };

  function render() {
    s.frame = 0;
    const dirty = s.dirty;
    s.dirty = new Set();
    if (dirty.has('batch') && s.batch) renderBatch(s.batch);
    if (dirty.has('chart')) drawChart($('chart'), s.samples);
    if (dirty.has('map')) {
      drawItemMap($('item-map'), s.map);
      if (s.map) setText('map-info', `${num(s.map.blocks.length)} blocks of ${num(s.map.blockSize)} items`);
    }
    if (dirty.has('failures')) renderFailures();
    if (s.batch && s.map) $('view-batch').dataset.ready = 'true'; // first full render (the test and bench wait on it)
  }

  /** Once the batch has ended nothing changes: one last map, and no more polling. */
  function checkEnded() {
    if (!s.batch || s.batch.status === 'running' || s.ended) return;
    s.ended = true;
    timers.forEach(clearInterval);
    s.failuresStale = true;
    void refreshMap();
  }

  function renderBatch(b) {
    const done = b.counts.succeeded + b.counts.failed + b.counts.canceled;
    const finished = b.counts.succeeded + b.counts.failed;
    setText('batch-id', b.id);
    const status = $('batch-status');
    const label = b.status === 'running' && b.paused ? 'paused' : b.status;
    if (status.textContent !== label) {
      status.textContent = label;
      status.className = `badge ${b.status}`;
    }
    setText('batch-model', `${b.model}${b.version ? ` v${b.version}` : ''}`);
    setText('batch-created', time(b.createdAt));
    setText('stat-done', `${num(finished)} / ${num(b.total)}`);
    const percent = b.total ? (done / b.total) * 100 : 100;
    setText('stat-percent', `${percent.toFixed(percent < 10 && percent > 0 ? 1 : 0)}%`);
    $('progress-bar').style.width = `${percent}%`;
    setText('stat-rate', b.itemsPerSecond === undefined ? '–' : b.itemsPerSecond.toFixed(1));
    setText('stat-eta', b.status !== 'running' ? 'ended' : b.eta ? time(b.eta) : '–');
    for (const k of ['pending', 'running', 'succeeded', 'failed', 'canceled']) setText(`count-${k}`, num(b.counts[k]));
    setText('stat-concurrency', b.concurrency === undefined ? '–' : num(b.concurrency));
    const running = b.status === 'running';
    $('pause').disabled = !running || b.paused === true;
    $('resume').disabled = !running || b.paused !== true;
    $('cancel').disabled = !running;
    $('retry-failed').disabled = !running || b.counts.failed === 0;
    $('set-concurrency').disabled = !running || !config.routes.setConcurrency;
    $('concurrency').disabled = $('set-concurrency').disabled;
    if (document.activeElement !== $('concurrency') && b.concurrency !== undefined) {
      $('concurrency').value = String(b.concurrency);
    }
  }

  function renderFailures() {
    const total = s.batch?.counts.failed ?? s.failures.length;
    setText(
      'failures-count',
      total > s.failures.length ? `(first ${s.failures.length} of ${num(total)})` : `(${total})`,
    );
    $('failures').replaceChildren(
      ...s.failures.map((item) =>
        row(
          [
            { text: item.index, className: 'num' },
            item.id,
            item.error?.type ?? '',
            { text: item.error?.message ?? '', className: 'wrap' },
            { text: item.attempts, className: 'num' },
          ],
          () => void showItem(item.id),
        ),
      ),
    );
  }

  /** The batch itself; on the page's first load and then every BATCH_EVERY_MS (progress events come only on change). */
  async function refreshBatch() {
    try {
      s.batch = await call('GET', base);
      schedule('batch');
      checkEnded();
    } catch (err) {
      notice(`Could not read batch ${id}: ${err.message}`, true);
    }
  }

  async function refreshMap() {
    if (s.mapBusy) {
      s.mapAgain = true; // the end's last map must not be lost to a request in flight
      return;
    }
    if (document.hidden && !s.ended) return;
    s.mapBusy = true;
    try {
      s.map = await call('GET', `${base}/item-map?blocks=${MAP_BLOCKS}`);
      schedule('map');
      const failed = s.batch?.counts.failed ?? 0;
      if (s.failuresStale || failed !== s.failuresFetchedFor) {
        s.failuresStale = false;
        s.failuresFetchedFor = failed;
        const failures = (await call('GET', `${base}/items?status=failed&limit=${FAILURES_PAGE}`)).items;
        const key = (list) => list.map((i) => `${i.index}:${i.attempts}`).join(',');
        if (key(failures) !== key(s.failures) || s.failures.length === 0) {
          s.failures = failures; // rows are rebuilt only when the list changed, not under a reader's cursor
          schedule('failures');
        }
      }
    } catch (err) {
      if (!stop.signal.aborted) notice(`Could not read the item map: ${err.message}`, true);
    } finally {
      s.mapBusy = false;
      if (s.mapAgain && !stop.signal.aborted) {
        s.mapAgain = false;
        void refreshMap();
      }
    }
  }

  function sample() {
    if (!s.batch) return;
    s.samples.push({ t: performance.now(), done: s.batch.counts.succeeded + s.batch.counts.failed });
    if (s.samples.length > MAX_SAMPLES) s.samples.splice(0, s.samples.length - MAX_SAMPLES);
    schedule('chart');
  }

  function onEvent(type, _id, data) {
    if (type.startsWith('batch.')) {
      const summary = JSON.parse(data);
      s.batch = { ...s.batch, ...summary };
      schedule('batch');
      checkEnded();
    } else if (type === 'error') {
      notice(`The event stream failed: ${JSON.parse(data).message}`, true);
    }
  }

  async function showBlock(i, cursor) {
    const b = s.map?.blocks[i];
    if (!b) return;
    const from = cursor ?? b.from;
    const limit = Math.min(BLOCK_PAGE, b.to - from);
    const page = await call('GET', `${base}/items?cursor=${from}&limit=${limit}`);
    const items = page.items.filter((it) => it.index < b.to);
    $('block-panel').hidden = false;
    setText('block-range', `${num(b.from)}–${num(b.to - 1)}`);
    const rows = items.map((it) =>
      row(
        [
          { text: it.index, className: 'num' },
          it.id,
          { node: badge(it.status) },
          { text: it.attempts, className: 'num' },
          time(it.finishedAt),
        ],
        () => void showItem(it.id),
      ),
    );
    if (cursor === undefined) $('block-items').replaceChildren(...rows);
    else $('block-items').append(...rows);
    const next = page.nextCursor;
    const more = $('block-more');
    more.hidden = next === undefined || next >= b.to;
    more.onclick = () => void showBlock(i, next).catch(failed('read the items'));
  }

  async function showItem(itemId) {
    const item = await call('GET', `${base}/items/${encodeURIComponent(itemId)}`).catch((err) => {
      notice(`Could not read item ${itemId}: ${err.message}`, true);
    });
    if (!item) return;
    $('item-view').hidden = false;
    setText('item-id', item.id);
    const st = $('item-status');
    st.textContent = item.status;
    st.className = `badge ${item.status}`;
    setText('item-index', item.index);
    setText('item-attempts', item.attempts);
    setText('item-started', time(item.startedAt));
    setText('item-finished', time(item.finishedAt));
    setText('item-took', duration(between(item.startedAt, item.finishedAt)));
    setText('item-error-type', item.error?.type ?? '');
    setText('item-error-message', item.error?.message ?? '');
    const inputs = JSON.stringify(item.inputs ?? {});
    $('item-inputs').textContent =
      inputs.length > MAX_INPUTS_SHOWN
        ? `${inputs.slice(0, MAX_INPUTS_SHOWN)}… (${num(inputs.length)} characters in all)`
        : inputs;
    $('item-result').textContent = item.result ? JSON.stringify(item.result, null, 2) : '(no result)';
    $('item-view').scrollIntoView({ block: 'nearest' });
  }

  const failed = (what) => (err) => notice(`Could not ${what}: ${err.message}`, true);

  async function control(action, body, done) {
    try {
      const res = await call('POST', `${base}/${action}`, body);
      notice(done(res));
    } catch (err) {
      notice(
        err.status === 404 && action === 'concurrency'
          ? 'This API has no route to set a batch’s concurrency.'
          : `${action} failed: ${err.message}`,
        true,
      );
    }
    await refreshBatch();
  }

  let cancelArmed = false;
  const handlers = {
    pause: () => control('pause', undefined, () => 'Paused: running items finish, no new ones start.'),
    resume: () => control('resume', undefined, () => 'Resumed.'),
    'retry-failed': () => control('retry-failed', undefined, (r) => `${num(r.retried)} failed item(s) queued again.`),
    'set-concurrency': () =>
      control('concurrency', { concurrency: Number($('concurrency').value) }, () => 'Concurrency set.'),
    cancel: () => {
      if (!cancelArmed) {
        cancelArmed = true;
        $('cancel').textContent = 'Click again to cancel';
        setTimeout(() => {
          cancelArmed = false;
          $('cancel').textContent = 'Cancel batch';
        }, 4000);
        return;
      }
      cancelArmed = false;
      $('cancel').textContent = 'Cancel batch';
      return control('cancel', undefined, () => 'Canceling: running items stop, finished results are kept.');
    },
  };
  for (const [idName, fn] of Object.entries(handlers)) $(idName).onclick = () => void fn();
  if (!config.routes.setConcurrency) {
    $('set-concurrency').title = 'This API does not serve POST /v1/batches/:id/concurrency yet';
  }

  const map = $('item-map');
  map.onclick = (e) => {
    const r = map.getBoundingClientRect();
    const i = blockAt(map, s.map, e.clientX - r.left, e.clientY - r.top);
    if (i >= 0) void showBlock(i).catch(failed('read the items'));
  };
  map.onmousemove = (e) => {
    const r = map.getBoundingClientRect();
    const b = s.map?.blocks[blockAt(map, s.map, e.clientX - r.left, e.clientY - r.top)];
    map.title = b
      ? `items ${b.from}–${b.to - 1}: ${b.succeeded} succeeded, ${b.failed} failed, ${b.running} running, ` +
        `${b.pending} pending, ${b.canceled} canceled`
      : '';
  };

  const ui = config.temporalUi;
  $('temporal-link').href =
    `${location.protocol}//${location.hostname}:${ui.port}/namespaces/${encodeURIComponent(ui.namespace)}` +
    `/workflows/${encodeURIComponent(`batch-${id}`)}`;
  delete $('view-batch').dataset.ready;
  $('block-panel').hidden = true;
  $('item-view').hidden = true;
  $('failures').replaceChildren();
  $('batch-status').textContent = '';
  setText('stream-state', 'stream: connecting');

  void (async () => {
    await Promise.all([refreshBatch(), refreshMap()]); // side by side: each asks the workflow
    if (stop.signal.aborted) return;
    if (!s.ended) timers.push(setInterval(() => void refreshMap(), MAP_EVERY_MS));
    if (!s.ended) timers.push(setInterval(() => void refreshBatch(), BATCH_EVERY_MS));
    if (!s.ended) timers.push(setInterval(sample, SAMPLE_EVERY_MS));
    sample();
    await followEvents(`${base}/events?items=false`, {
      signal: stop.signal,
      onEvent,
      onState: (state) => setText('stream-state', `stream: ${state}`),
    });
  })();

  return () => {
    stop.abort();
    timers.forEach(clearInterval);
    if (s.frame) cancelAnimationFrame(s.frame);
  };
}
