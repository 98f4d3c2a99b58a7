// The dashboard: the API key, the routes of the page (#/ the batches and online predictions, #/batches/<id> one
// batch), the batches list and the predictions panel. One batch's page is batch-page.js.
import { ApiError, apiKey, call } from './api.js';
import { openBatch } from './batch-page.js';
import { $, badge, bar, between, clearNotice, duration, notice, num, row, time } from './dom.js';

const LIST_EVERY_MS = 5000;
const TASKS_LIMIT = 20;

let config = { temporalUi: { port: 8233, namespace: 'default' }, routes: { listTasks: false, setConcurrency: false } };
let closeView = () => {};

/** The list's filters and where its pages start: cursors[0] is the first page. */
const list = { cursors: [''], page: 0, status: '', model: '' };

function showKeyState() {
  $('key-state').textContent = apiKey.get() ? 'key kept for this tab' : 'no key';
}

/** Explains a refused call; a 401 asks for a key. */
function explain(err, what) {
  if (err instanceof ApiError && err.status === 401) {
    notice(`${err.message}: enter an API key above.`, true);
    $('api-key').focus();
  } else notice(`Could not ${what}: ${err.message}`, true);
}

async function loadBatches() {
  const q = new URLSearchParams({ limit: '20' });
  if (list.status) q.set('status', list.status);
  if (list.model) q.set('model', list.model);
  const cursor = list.cursors[list.page];
  if (cursor) q.set('cursor', cursor);
  const page = await call('GET', `/v1/batches?${q}`);
  // The list carries totals and failures; the counts of a running batch are read from the batch itself.
  const details = await Promise.all(
    page.batches.map((b) => (b.status === 'running' ? call('GET', b.links.self).catch(() => undefined) : undefined)),
  );
  $('batches').replaceChildren(
    ...page.batches.map((b, i) => {
      const d = details[i];
      const done = d
        ? d.counts.succeeded + d.counts.failed + d.counts.canceled
        : b.status === 'running'
          ? undefined
          : b.total;
      const progress = document.createElement('span');
      if (done !== undefined) {
        progress.append(bar(b.total ? done / b.total : 1), ` ${Math.floor(b.total ? (done / b.total) * 100 : 100)}%`);
      }
      return row(
        [
          { text: b.id, href: `#/batches/${b.id}` },
          { node: badge(d?.paused ? 'paused' : b.status) },
          b.model,
          { node: progress },
          { text: num(b.total), className: 'num' },
          { text: num(d ? d.counts.failed : b.failed), className: 'num' },
          time(b.createdAt),
        ],
        (e) => {
          if (!(e.target instanceof HTMLAnchorElement)) location.hash = `#/batches/${b.id}`;
        },
      );
    }),
  );
  $('batches-empty').hidden = page.batches.length > 0;
  list.cursors[list.page + 1] = page.nextCursor;
  $('page-newer').disabled = list.page === 0;
  $('page-older').disabled = !page.nextCursor;
}

async function loadTasks() {
  const unavailable = (why) => {
    $('tasks-table').hidden = true;
    const p = $('tasks-unavailable');
    p.hidden = false;
    p.textContent = `Not available: ${why}`;
  };
  if (!config.routes.listTasks) {
    unavailable('this API does not list online tasks yet (GET /v1/tasks).');
    return;
  }
  let page;
  try {
    page = await call('GET', `/v1/tasks?limit=${TASKS_LIMIT}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) {
      unavailable('this API does not list online tasks (GET /v1/tasks).');
      return;
    }
    throw err;
  }
  $('tasks-unavailable').hidden = page.tasks.length > 0;
  $('tasks-unavailable').textContent = 'No online predictions yet.';
  $('tasks-table').hidden = false;
  $('tasks').replaceChildren(
    ...page.tasks.map((t) =>
      row([
        t.taskId,
        { node: badge(t.status) },
        t.source,
        t.model,
        { text: duration(between(t.createdAt, t.finishedAt)), className: 'num' },
        time(t.createdAt),
      ]),
    ),
  );
}

function openList() {
  $('view-list').hidden = false;
  $('view-batch').hidden = true;
  let stopped = false;
  let timer;
  const refresh = async () => {
    try {
      await Promise.all([loadBatches(), loadTasks()]);
      $('view-list').dataset.ready = 'true';
    } catch (err) {
      explain(err, 'list the batches');
    }
    if (!stopped) timer = setTimeout(() => void refresh(), LIST_EVERY_MS);
  };
  void refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    delete $('view-list').dataset.ready;
  };
}

function route() {
  closeView();
  const m = /^#\/batches\/([0-9a-f]+)$/.exec(location.hash);
  if (m) {
    $('view-list').hidden = true;
    $('view-batch').hidden = false;
    closeView = openBatch(m[1], config);
  } else {
    closeView = openList();
  }
}

$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  apiKey.set($('api-key').value.trim());
  $('api-key').value = '';
  showKeyState();
  clearNotice();
  route();
});
$('key-forget').addEventListener('click', () => {
  apiKey.set('');
  showKeyState();
  route();
});
$('filters').addEventListener('submit', (e) => {
  e.preventDefault();
  list.status = $('filter-status').value;
  list.model = $('filter-model').value.trim();
  list.cursors = [''];
  list.page = 0;
  route();
});
$('page-older').addEventListener('click', () => {
  list.page++;
  route();
});
$('page-newer').addEventListener('click', () => {
  list.page = Math.max(0, list.page - 1);
  route();
});
window.addEventListener('hashchange', route);

showKeyState();
try {
  config = await (await fetch('/ui/config.json')).json();
} catch {
  notice('Could not read /ui/config.json; assuming the defaults.', true);
}
route();
