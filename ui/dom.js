// Small DOM and formatting helpers. Text is always set as text (never as HTML), so nothing a batch carries can
// become markup.

export const $ = (id) => document.getElementById(id);

export function setText(id, value) {
  const el = $(id);
  const text = value === undefined || value === null ? '–' : String(value);
  if (el.textContent !== text) el.textContent = text;
}

/** A table row of cells: each a string, or { text, className, href }. */
export function row(cells, onClick) {
  const tr = document.createElement('tr');
  for (const cell of cells) {
    const td = document.createElement('td');
    const c = typeof cell === 'object' && cell !== null && !(cell instanceof Node) ? cell : { text: cell };
    if (c.node) td.append(c.node);
    else if (c.href) {
      const a = document.createElement('a');
      a.href = c.href;
      a.textContent = c.text;
      td.append(a);
    } else td.textContent = c.text === undefined || c.text === null ? '' : String(c.text);
    if (c.className) td.className = c.className;
    tr.append(td);
  }
  if (onClick) {
    tr.className = 'clickable';
    tr.addEventListener('click', onClick);
  }
  return tr;
}

export function badge(status) {
  const span = document.createElement('span');
  span.className = `badge ${status}`;
  span.textContent = status;
  return span;
}

export function bar(fraction) {
  const outer = document.createElement('span');
  outer.className = 'bar';
  const inner = document.createElement('span');
  inner.style.width = `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)}%`;
  outer.append(inner);
  return outer;
}

let noticeTimer;
/** A line under the header: what an action did, or what went wrong. */
export function notice(message, isError = false) {
  const el = $('notice');
  el.textContent = message;
  el.className = isError ? 'error' : '';
  el.hidden = false;
  clearTimeout(noticeTimer);
  if (!isError) noticeTimer = setTimeout(() => (el.hidden = true), 5000);
}

export function clearNotice() {
  $('notice').hidden = true;
}

export const num = (n) => (n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US'));

export function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString('en-GB', { hour12: false });
}

export function duration(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return m < 90 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const between = (from, to) => (from && to ? new Date(to).getTime() - new Date(from).getTime() : undefined);
