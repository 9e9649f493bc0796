// epochscope report viewer: a small canvas viewer with no dependencies.
// Every text from the run is set with textContent (never innerHTML), so names cannot inject markup.
(() => {
"use strict";

const DATA = JSON.parse(document.getElementById("epochscope-data").textContent);
const $ = (id) => document.getElementById(id);
const MISSING = 65535;           // quantised coordinate of a point without a position
const QMAX = 65534;
const EPOCHS = DATA.epochs;
const NE = EPOCHS.length;
const NC = DATA.classNames.length;

// ------------------------------------------------------------------ decoding packed arrays
const CTORS = { uint8: Uint8Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, float32: Float32Array };

function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function unpack(spec) {
  const raw = await inflate(b64bytes(spec.b64));
  const T = CTORS[spec.dtype];
  const size = T.BYTES_PER_ELEMENT;
  const n = raw.length / size;
  let bytes = raw;
  if (size > 1) {  // undo the byte-plane shuffle
    bytes = new Uint8Array(raw.length);
    for (let b = 0; b < size; b++) {
      const off = b * n;
      for (let i = 0; i < n; i++) bytes[i * size + b] = raw[off + i];
    }
  }
  const arr = new T(bytes.buffer);
  if (spec.delta && spec.shape[0] > 1) {  // undo the per-epoch difference; typed arrays wrap like numpy
    const row = n / spec.shape[0];
    for (let i = row; i < n; i++) arr[i] = arr[i] + arr[i - row];
  }
  return arr;
}

async function unpackSet(set) {
  if (!set) return null;
  const [index, coords, labels, predictions, forgetting] = await Promise.all(
    [set.index, set.coords, set.labels, set.predictions, set.forgetting].map((s) => (s ? unpack(s) : null)));
  const n = set.count;
  return { n, index, coords, labels, predictions, forgetting, unknown: set.unknownClass,
           mostForgotten: set.mostForgotten || [],
           sx: new Float32Array(n).fill(NaN), sy: new Float32Array(n).fill(NaN) };
}

// ------------------------------------------------------------------ colours
function hexToRgb(h) { return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)]; }
const RGB = DATA.colors.map(hexToRgb);
const ABGR = RGB.map(([r, g, b]) => ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0);
const SERIES_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

// ------------------------------------------------------------------ state
const S = {
  pos: 0, playing: false, speed: Math.min(10, Math.max(1, NE / 10)), loop: false,
  showTest: true, highlight: false, hidden: new Uint8Array(NC),
  view: { k: 1, tx: 0, ty: 0 }, mouse: null, drag: null, hover: null,
  dirty: true, frames: 0, frameTimes: [], lastShownEpoch: -1, lastTime: null,
};
let P = null, T = null, thumbs = null;   // probe set, test set, sprite image

// ------------------------------------------------------------------ map drawing (CPU raster into one ImageData)
const map = $("map");
const mctx = map.getContext("2d");
let img = null, pix = null, dpr = 1;
let disc = [], ring = [];

function offsets(r0, r1) {   // pixel offsets with r0 <= distance <= r1
  const out = [];
  const R = Math.ceil(r1);
  for (let dy = -R; dy <= R; dy++) for (let dx = -R; dx <= R; dx++) {
    const d = Math.hypot(dx, dy);
    if (d <= r1 && d >= r0) out.push([dx, dy]);
  }
  return out;
}

function resizeMap() {
  dpr = window.devicePixelRatio || 1;
  const w = Math.max(50, Math.round(map.clientWidth * dpr)), h = Math.max(50, Math.round(map.clientHeight * dpr));
  if (map.width !== w || map.height !== h) { map.width = w; map.height = h; }
  img = mctx.createImageData(map.width, map.height);
  pix = new Uint32Array(img.data.buffer);
  const r = 2.2 * dpr;
  disc = offsets(0, r).map(([dx, dy]) => dy * map.width + dx);
  ring = offsets(r + 0.6 * dpr, r + 1.6 * dpr).map(([dx, dy]) => dy * map.width + dx);
  S.dirty = true;
}

// World -> screen: the quantised square [0, QMAX]^2 keeps the aspect of the map's bounds.
function baseTransform() {
  const [xmin, xmax, ymin, ymax] = DATA.bounds;
  const bw = Math.max(xmax - xmin, 1e-12), bh = Math.max(ymax - ymin, 1e-12);
  const m = 16 * dpr, W = map.width, H = map.height;
  const k = Math.min((W - 2 * m) / bw, (H - 2 * m) / bh);
  const ox = (W - bw * k) / 2, oy = (H - bh * k) / 2;
  const v = S.view;
  // screen x = v.k * (ox + u/QMAX * bw * k) + v.tx ; y is flipped (up is +y)
  return { ax: v.k * bw * k / QMAX, bx: v.k * ox + v.tx * dpr, ay: -v.k * bh * k / QMAX, by: v.k * (H - oy) + v.ty * dpr };
}

function frameOf(pos) {
  const e0 = Math.max(0, Math.min(NE - 1, Math.floor(pos)));
  const e1 = Math.min(NE - 1, e0 + 1);
  return { e0, e1, t: Math.max(0, Math.min(1, pos - e0)) };
}

function project(set, f, tr) {   // interpolated screen positions of every point (NaN when hidden)
  const { n, coords, labels, sx, sy } = set;
  const o0 = f.e0 * n * 2, o1 = f.e1 * n * 2, t = f.t;
  for (let i = 0; i < n; i++) {
    const x0 = coords[o0 + 2 * i], y0 = coords[o0 + 2 * i + 1], x1 = coords[o1 + 2 * i], y1 = coords[o1 + 2 * i + 1];
    if (x0 === MISSING || S.hidden[labels[i]] || (x1 === MISSING && t > 0)) { sx[i] = NaN; sy[i] = NaN; continue; }
    const x = t > 0 ? x0 + (x1 - x0) * t : x0, y = t > 0 ? y0 + (y1 - y0) * t : y0;
    sx[i] = tr.ax * x + tr.bx; sy[i] = tr.ay * y + tr.by;
  }
}

function stamp(set, shape, colorOf) {
  const W = map.width, H = map.height, { n, sx, sy, labels } = set;
  const pad = 4 * dpr;
  for (let i = 0; i < n; i++) {
    const x = sx[i], y = sy[i];
    if (!(x >= pad && y >= pad && x < W - pad && y < H - pad)) continue;  // also skips NaN
    const c = colorOf(labels[i]);
    const at = (y | 0) * W + (x | 0);
    for (let k = 0; k < shape.length; k++) pix[at + shape[k]] = c;
  }
}

function drawMap() {
  const f = frameOf(S.pos);
  const tr = baseTransform();
  pix.fill(0xffffffff);
  project(P, f, tr);
  stamp(P, disc, (c) => ABGR[c]);
  if (T) {
    project(T, f, tr);
    if (S.showTest) {
      stamp(T, ring, () => 0xff000000);
      stamp(T, disc, (c) => ABGR[c]);
    } else T.sx.fill(NaN);
  }
  mctx.putImageData(img, 0, 0);
  mctx.lineWidth = 1.5 * dpr;
  if (S.highlight) {
    mctx.strokeStyle = "#000";
    for (const i of P.mostForgotten) {
      if (Number.isNaN(P.sx[i])) continue;
      mctx.beginPath(); mctx.arc(P.sx[i], P.sy[i], 6 * dpr, 0, 2 * Math.PI); mctx.stroke();
    }
  }
  if (S.mouse) updateHover();
  if (S.hover) {
    const set = S.hover.split === "test" ? T : P;
    const x = set.sx[S.hover.i], y = set.sy[S.hover.i];
    if (!Number.isNaN(x)) {
      mctx.strokeStyle = "#e00"; mctx.lineWidth = 2 * dpr;
      mctx.beginPath(); mctx.arc(x, y, 7 * dpr, 0, 2 * Math.PI); mctx.stroke();
    }
  }
}

// ------------------------------------------------------------------ hover + thumbnails
function nearest(set, x, y, r2) {
  let best = -1, bd = r2;
  const { n, sx, sy } = set;
  for (let i = 0; i < n; i++) {
    const dx = sx[i] - x, dy = sy[i] - y, d = dx * dx + dy * dy;
    if (d < bd) { bd = d; best = i; }   // NaN never compares smaller
  }
  return [best, bd];
}

function updateHover() {
  const x = S.mouse.x * dpr, y = S.mouse.y * dpr, r2 = (8 * dpr) ** 2;
  let [i, d] = nearest(P, x, y, r2);
  let hit = i >= 0 ? { split: "probe", i } : null;
  if (T && S.showTest) {
    const [j, dj] = nearest(T, x, y, r2);
    if (j >= 0 && dj <= d) hit = { split: "test", i: j };
  }
  S.hover = hit;
  showTooltip();
}

function className(c) { return c < NC ? DATA.classNames[c] : "(none)"; }

function showTooltip() {
  const tip = $("tooltip");
  if (!S.hover) { tip.hidden = true; return; }
  const set = S.hover.split === "test" ? T : P, i = S.hover.i;
  const e = Math.round(S.pos), label = set.labels[i], pred = set.predictions[e * set.n + i];
  const lines = [
    `${S.hover.split === "test" ? "test" : "probe"} example #${set.index[i]}`,
    `label: ${className(label)}`,
    pred === set.unknown ? `predicted at epoch ${EPOCHS[e]}: not recorded`
      : `predicted at epoch ${EPOCHS[e]}: ${className(pred)} ${pred === label ? "✓" : "✗"}`,
  ];
  if (set.forgetting) lines.push(`forgotten ${set.forgetting[i]} time${set.forgetting[i] === 1 ? "" : "s"}`);
  $("tip-text").textContent = lines.join("\n");
  const thumb = $("tip-thumb");
  const tile = !thumbs ? -1 : S.hover.split === "test" ? (DATA.thumbnails.testOffset == null ? -1 : DATA.thumbnails.testOffset + i) : i;
  thumb.hidden = !(tile >= 0);
  if (tile >= 0) {
    const th = DATA.thumbnails, c = thumb.getContext("2d");
    c.imageSmoothingEnabled = false;
    c.clearRect(0, 0, thumb.width, thumb.height);
    const s = Math.min(thumb.width / th.tileW, thumb.height / th.tileH);
    const col = tile % th.cols, row = Math.floor(tile / th.cols);
    c.drawImage(thumbs, col * th.tileW, row * th.tileH, th.tileW, th.tileH,
                (thumb.width - th.tileW * s) / 2, (thumb.height - th.tileH * s) / 2, th.tileW * s, th.tileH * s);
  }
  tip.hidden = false;
  const wrap = $("map-wrap").getBoundingClientRect();
  const px = set.sx[i] / dpr, py = set.sy[i] / dpr;
  const left = px + 14 + tip.offsetWidth > wrap.width ? px - 14 - tip.offsetWidth : px + 14;
  tip.style.left = `${Math.max(0, left)}px`;
  tip.style.top = `${Math.max(0, Math.min(py + 10, wrap.height - tip.offsetHeight))}px`;
}

// ------------------------------------------------------------------ curves (linked time cursor)
function seriesRange(list) {
  let lo = Infinity, hi = -Infinity;
  for (const s of list) for (const v of s.values) if (v != null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!(hi >= lo)) return [0, 1];
  if (hi === lo) return [lo - 0.5, hi + 0.5];
  const pad = (hi - lo) * 0.06;
  return [lo - pad, hi + pad];
}

function makeChart(canvas, xs, list, note) {
  const chart = { canvas, xs, list, bg: document.createElement("canvas"), note };
  const xmin = Math.min(...EPOCHS, ...(xs.length ? xs : [0])), xmax = Math.max(...EPOCHS, ...(xs.length ? xs : [1]));
  chart.x0 = xmin; chart.x1 = xmax > xmin ? xmax : xmin + 1;
  canvas.addEventListener("click", (ev) => {
    const r = canvas.getBoundingClientRect();
    const ep = chart.x0 + ((ev.clientX - r.left) / r.width * canvas.width - chart.m.l) / (canvas.width - chart.m.l - chart.m.r) * (chart.x1 - chart.x0);
    jumpToEpoch(ep);
  });
  return chart;
}

function renderChartBackground(ch) {
  const c = ch.canvas;
  c.width = Math.round(c.clientWidth * dpr); c.height = Math.round(c.clientHeight * dpr);
  ch.bg.width = c.width; ch.bg.height = c.height;
  const g = ch.bg.getContext("2d");
  g.font = `${10 * dpr}px system-ui, sans-serif`;
  // Lay the legend out first (wrapping), so the plot starts below it and no line hides a name.
  const m = ch.m = { l: 34 * dpr, r: 6 * dpr, t: 4 * dpr, b: 16 * dpr };
  const spots = [];
  let lx = m.l, row = 0;
  for (const s of ch.list) {
    const tw = g.measureText(s.name).width;
    if (lx + tw > c.width - m.r && lx > m.l) { lx = m.l; row++; }
    spots.push([lx, row]);
    lx += tw + 10 * dpr;
  }
  if (ch.list.length) m.t = (6 + 11 * (row + 1)) * dpr;
  const W = c.width - m.l - m.r, H = c.height - m.t - m.b;
  g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height);
  g.font = `${10 * dpr}px system-ui, sans-serif`;
  g.fillStyle = "#666"; g.strokeStyle = "#ddd"; g.lineWidth = 1;
  if (!ch.list.length) { g.fillText(ch.note || "nothing recorded", m.l, m.t + 14 * dpr); return; }
  const [lo, hi] = seriesRange(ch.list);
  const X = (x) => m.l + (x - ch.x0) / (ch.x1 - ch.x0) * W, Y = (y) => m.t + (1 - (y - lo) / (hi - lo)) * H;
  g.strokeRect(m.l, m.t, W, H);
  g.textAlign = "right";
  for (const v of [lo, (lo + hi) / 2, hi]) g.fillText(fmt(v), m.l - 3 * dpr, Y(v) + 3 * dpr);
  g.textAlign = "center";
  g.fillText(String(ch.x0), m.l, c.height - 3 * dpr); g.fillText(String(ch.x1), m.l + W, c.height - 3 * dpr);
  g.textAlign = "left";
  ch.list.forEach((s, k) => {
    g.strokeStyle = SERIES_COLORS[k % SERIES_COLORS.length]; g.lineWidth = 1.5 * dpr; g.beginPath();
    let pen = false;
    s.xs.forEach((x, j) => {
      const v = s.values[j];
      if (v == null) { pen = false; return; }
      if (pen) g.lineTo(X(x), Y(v)); else g.moveTo(X(x), Y(v));
      pen = true;
      if (s.xs.length === 1) g.arc(X(x), Y(v), 2 * dpr, 0, 2 * Math.PI);
    });
    g.stroke();
    g.fillStyle = g.strokeStyle;
    g.fillText(s.name, spots[k][0], (13 + 11 * spots[k][1]) * dpr);
  });
}

function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3); }

function drawChart(ch) {
  const c = ch.canvas, g = c.getContext("2d");
  g.drawImage(ch.bg, 0, 0);
  if (!ch.list.length) return;
  const x = ch.m.l + (currentEpochValue() - ch.x0) / (ch.x1 - ch.x0) * (c.width - ch.m.l - ch.m.r);
  g.strokeStyle = "#e00"; g.lineWidth = 1.5 * dpr;
  g.beginPath(); g.moveTo(x, ch.m.t); g.lineTo(x, c.height - ch.m.b); g.stroke();
}

function currentEpochValue() {
  const f = frameOf(S.pos);
  return EPOCHS[f.e0] + (EPOCHS[f.e1] - EPOCHS[f.e0]) * f.t;
}

function jumpToEpoch(ep) {
  let best = 0;
  EPOCHS.forEach((e, k) => { if (Math.abs(e - ep) < Math.abs(EPOCHS[best] - ep)) best = k; });
  pause();
  setPos(best);
}

let charts = [];
function buildCharts() {
  const M = DATA.metrics, Q = DATA.quality;
  const pick = (keys) => keys.map((k) => ({ name: k, xs: M.epochs, values: M.series[k] }));
  const quality = Object.keys(Q.series).filter((k) => Q.series[k].some((v) => v != null))
    .map((k) => ({ name: k, xs: Q.epochs, values: Q.series[k] }));
  charts = [
    makeChart($("curve-accuracy"), M.epochs, pick(M.accuracy), "no accuracy recorded"),
    makeChart($("curve-loss"), M.epochs, pick(M.loss), "no loss recorded"),
    makeChart($("curve-quality"), Q.epochs, quality, "no quality figures"),
  ];
}

// ------------------------------------------------------------------ confusion matrix of the current epoch
let confusion = null;
function drawConfusion(e) {
  const c = $("confusion"), g = c.getContext("2d");
  c.width = Math.round(c.clientWidth * dpr); c.height = Math.round(c.clientHeight * dpr);
  g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height);
  const showNames = NC <= 20;
  const m = { l: (showNames ? 58 : 8) * dpr, t: 18 * dpr, b: (showNames ? 48 : 8) * dpr };
  const size = Math.min(c.width - m.l - 6 * dpr, c.height - m.t - m.b), cell = size / NC;
  const base = e * NC * NC;
  let total = 0, right = 0;
  g.font = `${Math.max(7, Math.min(11, cell / dpr / 3)) * dpr}px system-ui, sans-serif`;
  g.textAlign = "center"; g.textBaseline = "middle";
  for (let r = 0; r < NC; r++) {
    let rowSum = 0;
    for (let k = 0; k < NC; k++) rowSum += confusion[base + r * NC + k];
    total += rowSum; right += confusion[base + r * NC + r];
    for (let k = 0; k < NC; k++) {
      const v = confusion[base + r * NC + k], f = rowSum ? v / rowSum : 0;
      const shade = Math.round(255 - 200 * f);
      g.fillStyle = r === k ? `rgb(${shade},${Math.round(255 - 120 * f)},${shade})` : `rgb(255,${shade},${shade})`;
      g.fillRect(m.l + k * cell, m.t + r * cell, cell - 0.5, cell - 0.5);
      if (NC <= 12 && cell > 16 * dpr && v) { g.fillStyle = f > 0.6 ? "#fff" : "#333"; g.fillText(String(v), m.l + (k + 0.5) * cell, m.t + (r + 0.5) * cell); }
    }
  }
  g.fillStyle = "#333"; g.textAlign = "left"; g.textBaseline = "alphabetic";
  g.font = `${11 * dpr}px system-ui, sans-serif`;
  g.fillText(`epoch ${EPOCHS[e]}: ${total ? (100 * right / total).toFixed(1) : "–"}% right · rows true, columns predicted`, 2 * dpr, 12 * dpr);
  if (showNames) {
    g.font = `${9 * dpr}px system-ui, sans-serif`; g.fillStyle = "#555";
    for (let r = 0; r < NC; r++) {
      const name = DATA.classNames[r].length > 9 ? DATA.classNames[r].slice(0, 8) + "…" : DATA.classNames[r];
      g.textAlign = "right"; g.fillText(name, m.l - 3 * dpr, m.t + (r + 0.6) * cell);
      g.save(); g.translate(m.l + (r + 0.5) * cell, m.t + size + 4 * dpr); g.rotate(-Math.PI / 4);
      g.fillText(name, 0, 0); g.restore();
    }
  }
}

// ------------------------------------------------------------------ network of the current epoch
let NET = null;   // decoded edges of every frame (see epochscope/html/network.py)
async function loadNetwork() {
  const N = DATA.network;
  if (!N || !N.available) return;
  const [src, dst, width, change] = await Promise.all([N.src, N.dst, N.width, N.change].map(unpack));
  NET = { src, dst, width, change };
}

function drawNetwork(e) {
  const N = DATA.network, c = $("network");
  if (!NET) return;
  const g = c.getContext("2d");
  c.width = Math.round(c.clientWidth * dpr); c.height = Math.round(c.clientHeight * dpr);
  g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height);
  const lines = Math.max(...N.labels.map((l) => l.split("\n").length));
  const pad = 18 * dpr, bottom = (16 + 11 * lines) * dpr;
  const X = (x) => pad + x * (c.width - 2 * pad), Y = (y) => pad + (1 - y) * (c.height - pad - bottom);
  const f = N.frameOf[e];
  g.font = `${10 * dpr}px system-ui, sans-serif`;
  if (f < 0) { g.fillStyle = "#666"; g.fillText(`epoch ${EPOCHS[e]} holds no weights`, pad, pad); return; }
  const nodes = N.nodes;
  g.lineCap = "round";
  for (let k = N.offsets[f]; k < N.offsets[f + 1]; k++) {
    const a = nodes[NET.src[k]], b = nodes[NET.dst[k]];
    g.strokeStyle = N.palette[NET.change[k]];
    g.lineWidth = (N.minWidth + (N.maxWidth - N.minWidth) * NET.width[k] / 255) * dpr;
    g.beginPath(); g.moveTo(X(a[0]), Y(a[1])); g.lineTo(X(b[0]), Y(b[1])); g.stroke();
  }
  const r = Math.max(2, Math.min(6, 140 / nodes.length)) * dpr;
  g.fillStyle = "#fff"; g.strokeStyle = "#000"; g.lineWidth = dpr;
  for (const [x, y] of nodes) { g.beginPath(); g.arc(X(x), Y(y), r, 0, 2 * Math.PI); g.fill(); g.stroke(); }
  g.fillStyle = "#444"; g.textAlign = "center";
  N.labels.forEach((label, k) => {
    const x = Math.min(Math.max(X(N.columns[k] ?? 0), 24 * dpr), c.width - 24 * dpr);
    label.split("\n").forEach((line, j) => g.fillText(line, x, c.height - bottom + (12 + 11 * j) * dpr));
  });
  g.textAlign = "left";
}

// ------------------------------------------------------------------ playback
function setPos(p) {
  S.pos = Math.max(0, Math.min(NE - 1, p));
  $("slider").value = String(S.pos);
  S.dirty = true;
}
function play() {
  if (NE < 2) return;
  if (S.pos >= NE - 1) setPos(0);
  S.playing = true; S.lastTime = null; S.frameTimes = [];
  $("play").textContent = "❚❚ Pause";
}
function pause() { S.playing = false; $("play").textContent = "▶ Play"; S.dirty = true; }

function updateLabels() {
  const e = Math.round(S.pos);
  if (e === S.lastShownEpoch) return;
  S.lastShownEpoch = e;
  $("epoch-label").textContent = `epoch ${EPOCHS[e]} (${e + 1} of ${NE})`;
  drawConfusion(e);
  drawNetwork(e);
  if (S.hover) showTooltip();
}

function tick(now) {
  if (S.playing) {
    if (S.lastTime != null) {
      let p = S.pos + (now - S.lastTime) / 1000 * S.speed;
      if (p >= NE - 1) { if (S.loop) p = p % (NE - 1); else { p = NE - 1; pause(); } }
      setPos(p);
    }
    S.lastTime = now;
  }
  if (S.dirty) {
    S.dirty = false;
    drawMap();
    for (const ch of charts) drawChart(ch);
    updateLabels();
    S.frames++;
    S.frameTimes.push(now);
    if (S.frameTimes.length > 240) S.frameTimes.shift();
  }
  requestAnimationFrame(tick);
}

// ------------------------------------------------------------------ interaction
function setupControls() {
  const slider = $("slider");
  slider.max = String(Math.max(0, NE - 1));
  slider.addEventListener("input", () => { pause(); setPos(parseFloat(slider.value)); });
  $("play").addEventListener("click", () => (S.playing ? pause() : play()));
  const speed = $("speed");
  for (const v of [0.5, 1, 2, 5, 10, 20]) {
    const o = document.createElement("option"); o.value = String(v); o.textContent = `${v} epochs/s`; speed.append(o);
  }
  const nearestSpeed = [0.5, 1, 2, 5, 10, 20].reduce((a, b) => (Math.abs(b - S.speed) < Math.abs(a - S.speed) ? b : a));
  S.speed = nearestSpeed; speed.value = String(nearestSpeed);
  speed.addEventListener("change", () => { S.speed = parseFloat(speed.value); });
  $("loop").addEventListener("change", (ev) => { S.loop = ev.target.checked; });
  $("show-test").addEventListener("change", (ev) => { S.showTest = ev.target.checked; S.dirty = true; });
  if (!T) $("test-toggle").hidden = true;
  $("highlight").addEventListener("change", (ev) => { S.highlight = ev.target.checked; S.dirty = true; });
  $("reset-view").addEventListener("click", resetView);

  const legend = $("legend");
  DATA.classNames.forEach((name, c) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "legend-item"; b.dataset.cls = String(c); b.setAttribute("aria-pressed", "true");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = DATA.colors[c];
    const label = document.createElement("span"); label.textContent = name;
    b.title = name; b.append(sw, label);
    b.addEventListener("click", () => toggleClass(c));
    legend.append(b);
  });

  map.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = map.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
    const f = Math.exp(-ev.deltaY * 0.0015), v = S.view;
    const k = Math.max(0.2, Math.min(200, v.k * f)), g = k / v.k;
    v.tx = mx - (mx - v.tx) * g; v.ty = my - (my - v.ty) * g; v.k = k;   // keep the point under the cursor
    S.dirty = true;
  }, { passive: false });
  map.addEventListener("pointerdown", (ev) => {
    S.drag = { x: ev.clientX, y: ev.clientY, tx: S.view.tx, ty: S.view.ty };
    map.setPointerCapture(ev.pointerId); map.classList.add("dragging");
  });
  map.addEventListener("pointermove", (ev) => {
    const r = map.getBoundingClientRect();
    S.mouse = { x: ev.clientX - r.left, y: ev.clientY - r.top };
    if (S.drag) { S.view.tx = S.drag.tx + ev.clientX - S.drag.x; S.view.ty = S.drag.ty + ev.clientY - S.drag.y; }
    S.dirty = true;
  });
  const endDrag = () => { S.drag = null; map.classList.remove("dragging"); };
  map.addEventListener("pointerup", endDrag);
  map.addEventListener("pointercancel", endDrag);
  map.addEventListener("pointerleave", () => { S.mouse = null; S.hover = null; showTooltip(); S.dirty = true; });
  map.addEventListener("dblclick", resetView);
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement || ev.target instanceof HTMLButtonElement) return;
    if (ev.key === " ") { ev.preventDefault(); S.playing ? pause() : play(); }
    else if (ev.key === "ArrowRight") { pause(); setPos(Math.floor(S.pos) + 1); }
    else if (ev.key === "ArrowLeft") { pause(); setPos(Math.ceil(S.pos) - 1); }
  });
  window.addEventListener("resize", () => { resizeAll(); });
}

function resetView() { S.view = { k: 1, tx: 0, ty: 0 }; S.dirty = true; }

function toggleClass(c, visible) {
  S.hidden[c] = visible === undefined ? (S.hidden[c] ? 0 : 1) : (visible ? 0 : 1);
  const b = document.querySelector(`#legend button[data-cls="${c}"]`);
  if (b) b.setAttribute("aria-pressed", S.hidden[c] ? "false" : "true");
  S.dirty = true;
}

function resizeAll() {
  resizeMap();
  for (const ch of charts) renderChartBackground(ch);
  S.lastShownEpoch = -1;
  S.dirty = true;
}

function fillText() {
  const info = DATA.info;
  $("title").textContent = `${DATA.title} — ${info.layer}`;
  document.title = `epochscope: ${DATA.title} — ${info.layer}`;
  $("subtitle").textContent = `${info.method} map of layer ${info.layer} · ${info.shownPoints.toLocaleString()} of ` +
    `${info.probeSize.toLocaleString()} probe points${T ? `, ${T.n.toLocaleString()} test points` : ""} · ` +
    `epochs ${EPOCHS[0]}–${EPOCHS[NE - 1]} · ${info.framework}${info.created ? " · " + info.created : ""}`;
  const notes = [];
  const skipped = Object.entries(DATA.skipped || {});
  if (skipped.length) notes.push(`epochs without a map: ${skipped.map(([e, why]) => `${e} (${why})`).join("; ")}`);
  if (info.shownPoints < info.probeSize) notes.push(`showing a random ${info.shownPoints.toLocaleString()} of ${info.probeSize.toLocaleString()} probe points; the confusion matrix uses all`);
  if (!DATA.thumbnails) notes.push("no image inputs were recorded, so hovering shows no thumbnail");
  const ul = $("notes");
  for (const n of notes) { const li = document.createElement("li"); li.textContent = n; ul.append(li); }
  const N = DATA.network;
  if (!N || !N.available) $("network").hidden = true;
  $("network-note").textContent = (N && N.note) || "no weights of a dense chain were recorded, so the network is not drawn";
}

// ------------------------------------------------------------------ test hook (used by the browser tests and benchmark)
function fresh() { if (S.dirty) drawMap(); }  // the hook reads positions of the state just set, not the last frame

function screenPos(set, i) {
  fresh();
  if (!set || i < 0 || i >= set.n || Number.isNaN(set.sx[i])) return null;
  const r = map.getBoundingClientRect();
  return { x: r.left + set.sx[i] / dpr, y: r.top + set.sy[i] / dpr };
}

async function start() {
  [P, T, confusion] = await Promise.all([unpackSet(DATA.probe), unpackSet(DATA.test), unpack(DATA.confusion), loadNetwork()]);
  if (DATA.thumbnails) {
    thumbs = new Image();
    thumbs.src = DATA.thumbnails.uri;
    await thumbs.decode();
  }
  fillText();
  buildCharts();
  setupControls();
  resizeAll();
  $("loading").hidden = true;
  drawMap(); // draw once synchronously so the hook sees positions right away
  for (const ch of charts) drawChart(ch);
  updateLabels();
  requestAnimationFrame(tick);
}

const ready = start();
window.epochscope = {
  ready,
  epochs: () => EPOCHS.slice(),
  epoch: () => EPOCHS[Math.round(S.pos)],
  position: () => S.pos,
  setEpoch(epoch) { const k = EPOCHS.indexOf(epoch); if (k < 0) throw new Error(`no map for epoch ${epoch}`); pause(); setPos(k); drawMap(); updateLabels(); },
  setPosition(p) { pause(); setPos(p); drawMap(); updateLabels(); },
  play, pause, isPlaying: () => S.playing,
  setSpeed(v) { S.speed = v; },
  setLoop(v) { S.loop = !!v; $("loop").checked = !!v; },
  frames: () => S.frames,
  fps() { const t = S.frameTimes; return t.length < 2 ? 0 : (t.length - 1) * 1000 / (t[t.length - 1] - t[0]); },
  pointScreenPosition: (i, split = "probe") => screenPos(split === "test" ? T : P, i),
  pointCount: (split = "probe") => (split === "test" ? (T ? T.n : 0) : P.n),
  visiblePoints() { fresh(); let k = 0; for (let i = 0; i < P.n; i++) if (!Number.isNaN(P.sx[i])) k++; return k; },
  networkEdges() { const N = DATA.network, f = NET ? N.frameOf[Math.round(S.pos)] : -1; return f < 0 ? 0 : N.offsets[f + 1] - N.offsets[f]; },
  drawTime(n = 30) {   // mean ms to draw one interpolated map frame (benchmark)
    const keep = S.pos;
    for (let k = 0; k < 5; k++) { S.pos = k * 0.5; drawMap(); }   // warm up the JIT
    const t0 = performance.now();
    for (let k = 0; k < n; k++) { S.pos = (k * 0.37) % Math.max(1, NE - 1); drawMap(); }
    const ms = (performance.now() - t0) / n;
    S.pos = keep; S.dirty = true;
    return ms;
  },
  hovered: () => (S.hover ? { split: S.hover.split, index: S.hover.i } : null),
  toggleClass,
  label: (i, split = "probe") => className((split === "test" ? T : P).labels[i]),
};
ready.catch((err) => { $("loading").textContent = `could not read the report's data: ${err}`; throw err; });
})();
