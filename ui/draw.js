// Drawing on <canvas>: the throughput chart and the item map. Both draw a bounded number of shapes (samples of the
// last minutes, at most the map's blocks), whatever the batch's size.

const COLOURS = {
  pending: [208, 213, 221],
  running: [59, 130, 246],
  succeeded: [34, 197, 94],
  failed: [239, 68, 68],
  canceled: [107, 114, 128],
};
const STATES = Object.keys(COLOURS);

/** The canvas's 2D context sized to its CSS box at the device's pixel ratio, and that box's size. */
function context(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return { ctx, width, height };
}

/** Items per second between consecutive samples ({ t: ms, done: items }), averaged over a few for a calm line. */
export function rates(samples, span = 3) {
  const out = [];
  for (let i = span; i < samples.length; i++) {
    const a = samples[i - span];
    const b = samples[i];
    out.push({ t: b.t, rate: Math.max(0, ((b.done - a.done) * 1000) / Math.max(1, b.t - a.t)) });
  }
  return out;
}

export function drawChart(canvas, samples) {
  const { ctx, width, height } = context(canvas);
  const points = rates(samples);
  const pad = { left: 44, right: 8, top: 8, bottom: 18 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const max = Math.max(1, ...points.map((p) => p.rate));
  const top = niceCeil(max);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#6b7280';
  ctx.strokeStyle = '#e5e7eb';
  ctx.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = pad.top + h - f * h;
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(pad.left + w, y);
    ctx.stroke();
    ctx.fillText(compact(top * f), 4, y + 4);
  }
  if (points.length < 2) {
    ctx.fillText('items/s: waiting for samples', pad.left + 8, pad.top + 16);
    return;
  }
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const x = (t) => pad.left + ((t - t0) / Math.max(1, t1 - t0)) * w;
  const y = (r) => pad.top + h - (r / top) * h;
  ctx.strokeStyle = '#3b82f6';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  points.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.t), y(p.rate)) : ctx.lineTo(x(p.t), y(p.rate))));
  ctx.stroke();
  ctx.fillStyle = '#6b7280';
  ctx.fillText(`last ${Math.round((t1 - t0) / 1000)} s`, pad.left + 4, height - 4);
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v);
}

function compact(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k`;
  return v < 10 && v % 1 !== 0 ? v.toFixed(1) : String(Math.round(v));
}

/** The geometry of the map's grid for this many blocks in this box. */
function layout(width, height, count) {
  const cell = Math.max(3, Math.floor(Math.sqrt((width * height) / Math.max(1, count))));
  let size = cell;
  let cols = Math.max(1, Math.floor(width / size));
  while (size > 3 && Math.ceil(count / cols) * size > height) {
    size--;
    cols = Math.max(1, Math.floor(width / size));
  }
  return { size, cols, gap: size >= 8 ? 1 : 0 };
}

/** A block's colour: its states' colours weighted by their counts. */
function mix(block) {
  const n = STATES.reduce((s, k) => s + block[k], 0) || 1;
  const rgb = [0, 1, 2].map((c) => Math.round(STATES.reduce((s, k) => s + COLOURS[k][c] * block[k], 0) / n));
  return `rgb(${rgb.join(',')})`;
}

export function drawItemMap(canvas, map) {
  const { ctx, width, height } = context(canvas);
  if (!map || map.blocks.length === 0) return;
  const { size, cols, gap } = layout(width, height, map.blocks.length);
  map.blocks.forEach((b, i) => {
    const x = (i % cols) * size;
    const y = Math.floor(i / cols) * size;
    ctx.fillStyle = mix(b);
    ctx.fillRect(x, y, size - gap, size - gap);
    if (b.failed > 0) {
      // A single failure in a large block would vanish in the mix: mark it.
      ctx.strokeStyle = 'rgb(239,68,68)';
      ctx.lineWidth = 1.5;
      ctx.strokeRect(x + 0.75, y + 0.75, size - gap - 1.5, size - gap - 1.5);
    }
  });
}

/** The block under a point of the canvas (CSS pixels from its top left), or -1. */
export function blockAt(canvas, map, px, py) {
  if (!map) return -1;
  const { size, cols } = layout(canvas.clientWidth, canvas.clientHeight, map.blocks.length);
  const col = Math.floor(px / size);
  const i = Math.floor(py / size) * cols + col;
  return col < cols && i >= 0 && i < map.blocks.length ? i : -1;
}
