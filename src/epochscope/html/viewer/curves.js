// Accuracy, loss and map-quality curves with the linked time cursor; a click jumps to that epoch.
// Axes as curves.png draws them: rounded ticks over the data's range; an axis whose data are never
// negative never goes below 0, one whose data lie in [0, 1] never leaves it. Legends in words, laid out
// in rows above the plot, where they cover no curve and no tick label.

// "Nice" ticks: a step of 1, 2, 2.5 or 5 times a power of ten, at most maxTicks of them over [lo, hi].
function niceTicks(lo, hi, maxTicks, integer = false) {
  const raw = (hi - lo) / Math.max(1, maxTicks);
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = 10 * mag;
  for (const m of (integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10])) if (m * mag >= raw * (1 - 1e-9)) { step = m * mag; break; }
  if (integer) step = Math.max(1, Math.round(step));
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let k = 0, v = a; v <= b + step * 1e-6 && k < 50; k++, v = a + k * step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  let digits = 0;
  while (digits < 6 && Math.abs(Math.round(step * 10 ** digits) - step * 10 ** digits) > 1e-6) digits++;
  return { lo: a, hi: b, ticks, digits };
}

function dataRange(list) {
  let lo = Infinity, hi = -Infinity;
  for (const s of list) for (const v of s.values) if (v != null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!(hi >= lo)) return [0, 1];
  if (hi === lo) {  // one value: a small range around it that keeps the axis' sign rules
    const d = Math.abs(lo) * 0.1 || 0.5;
    return [lo >= 0 ? Math.max(0, lo - d) : lo - d, hi <= 1 && lo >= 0 ? Math.min(1, hi + d) : hi + d];
  }
  // A margin of 5% each side (as curves.png has), within the same sign rules: a point at the
  // data's extreme is drawn whole, not cut in half by the plot's edge.
  const pad = (hi - lo) * 0.05;
  return [lo >= 0 ? Math.max(0, lo - pad) : lo - pad, hi <= 1 && lo >= 0 ? Math.min(1, hi + pad) : hi + pad];
}

function makeChart(canvas, xs, list, note) {
  const chart = { canvas, xs, list, bg: document.createElement("canvas"), note, m: { l: 0, r: 0, t: 0, b: 0 } };
  const ex = EPOCHS.map(xOf);
  const xmin = Math.min(...ex, ...(xs.length ? xs : [0])), xmax = Math.max(...ex, ...(xs.length ? xs : [1]));
  // One epoch: half an epoch each side, so its point sits in the middle (not on the edge of an
  // axis running to an epoch the run lacks).
  chart.x0 = xmax > xmin ? xmin : xmin - 0.5; chart.x1 = xmax > xmin ? xmax : xmin + 0.5;
  canvas.addEventListener("click", (ev) => {
    const r = canvas.getBoundingClientRect(), m = chart.m;
    const px = (ev.clientX - r.left) * dpr;
    jumpToEpoch(chart.x0 + (px - m.l) / (canvas.width - m.l - m.r) * (chart.x1 - chart.x0));
  });
  return chart;
}

function renderChartBackground(ch) {
  const c = ch.canvas;
  c.width = Math.max(1, Math.round(c.clientWidth * dpr)); c.height = Math.max(1, Math.round(c.clientHeight * dpr));
  ch.bg.width = c.width; ch.bg.height = c.height;
  clearTexts(c);
  const g = ch.bg.getContext("2d");
  const px = (v) => v * dpr;
  g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height);
  g.font = `${px(11)}px ${FONT}`;
  g.textBaseline = "alphabetic"; g.textAlign = "left";
  const lineH = px(14), swatch = px(14), gap = px(12);
  if (!ch.list.length) {
    g.fillStyle = "#666";
    drawText(g, c, fitText(g, visible(ch.note || "nothing recorded"), c.width - px(8)), px(4), px(16));
    ch.m = { l: 0, r: 0, t: 0, b: 0 };
    return;
  }
  // The legend: entries (a short line in the series' colour, then its name) wrapped into rows.
  const spots = [];
  let lx = px(4), row = 0;
  for (const s of ch.list) {
    const name = fitText(g, visible(s.name), c.width - px(8) - swatch - px(4));   // a metric or run name (text.js)
    const w = swatch + px(4) + textWidth(g, name);
    if (lx + w > c.width - px(4) && lx > px(4)) { lx = px(4); row++; }
    spots.push([lx, row, name]);
    lx += w + gap;
  }
  const legendH = (row + 1) * lineH + px(4);
  // The axes: ticks first, so the margins hold their labels.
  const [dlo, dhi] = dataRange(ch.list);
  const plotHGuess = c.height - legendH - px(30);
  const y = niceTicks(dlo, dhi, Math.max(2, Math.min(6, Math.floor(plotHGuess / px(26)))));
  const yLabels = y.ticks.map((v) => v.toFixed(y.digits));
  const yw = Math.max(...yLabels.map((t) => textWidth(g, t)));
  const m = ch.m = { l: yw + px(8), r: px(6), t: legendH + px(8), b: px(20) };
  const xw0 = c.width - m.l - m.r;
  const span = ch.x1 - ch.x0;
  const xt = niceTicks(ch.x0, ch.x1, Math.max(1, Math.min(8, Math.floor(xw0 / px(48)))), true);
  const xStep = Math.max(1, xt.ticks.length > 1 ? xt.ticks[1] - xt.ticks[0] : 1);
  const xTicks = [];
  for (let v = Math.ceil(ch.x0 / xStep) * xStep; v <= ch.x1 + 1e-9; v += xStep) xTicks.push(Math.round(v));
  // The last (and first) tick label is centred on its tick: the margins hold its half.
  if (xTicks.length) {
    const lastW = textWidth(g, String(xTicks[xTicks.length - 1])), firstW = textWidth(g, String(xTicks[0]));
    const atEnd = (xTicks[xTicks.length - 1] - ch.x0) / span, atStart = (xTicks[0] - ch.x0) / span;
    m.r = Math.max(m.r, lastW / 2 + px(3) - (1 - atEnd) * xw0);
    m.l = Math.max(m.l, firstW / 2 + px(3) - atStart * xw0);
  }
  const W = c.width - m.l - m.r, H = c.height - m.t - m.b;
  const X = (x) => m.l + (x - ch.x0) / span * W, Y = (v) => m.t + (1 - (v - y.lo) / (y.hi - y.lo)) * H;
  ch.X = X;
  g.strokeStyle = "#e4e4e4"; g.lineWidth = 1;
  for (const v of y.ticks) { g.beginPath(); g.moveTo(m.l, Math.round(Y(v)) + 0.5); g.lineTo(m.l + W, Math.round(Y(v)) + 0.5); g.stroke(); }
  g.strokeStyle = "#bbb"; g.strokeRect(m.l + 0.5, m.t + 0.5, W - 1, H - 1);
  g.fillStyle = "#555";
  g.textAlign = "right"; g.textBaseline = "middle";
  y.ticks.forEach((v, k) => drawText(g, c, yLabels[k], m.l - px(4), Y(v)));
  g.textAlign = "center"; g.textBaseline = "top";
  for (const v of xTicks) {
    g.strokeStyle = "#bbb"; g.beginPath(); g.moveTo(X(v), m.t + H); g.lineTo(X(v), m.t + H + px(3)); g.stroke();
    drawText(g, c, String(v), X(v), m.t + H + px(5));
  }
  // The curves, clipped to the plot.
  g.save(); g.beginPath(); g.rect(m.l, m.t, W, H); g.clip();
  for (const s of ch.list) {
    g.strokeStyle = s.color; g.fillStyle = s.color; g.lineWidth = 1.6 * dpr; g.beginPath();
    g.setLineDash((s.dash || []).map((v) => v * dpr));   // another run's series (runs side by side)
    let pen = false;
    s.values.forEach((v, j) => {
      if (v == null) { pen = false; return; }
      const x = s.xs[j];
      if (pen) g.lineTo(X(x), Y(v)); else g.moveTo(X(x), Y(v));
      pen = true;
    });
    g.stroke();
    g.setLineDash([]);
    if (s.xs.length <= 30) s.values.forEach((v, j) => {   // few epochs: a dot per epoch, as curves.png
      if (v == null) return;
      g.beginPath(); g.arc(X(s.xs[j]), Y(v), 2.2 * dpr, 0, 2 * Math.PI); g.fill();
    });
  }
  g.restore();
  // The legend rows.
  g.textAlign = "left"; g.textBaseline = "middle";
  ch.list.forEach((s, k) => {
    const [x0, r, name] = spots[k], yy = px(4) + r * lineH + lineH / 2;
    g.strokeStyle = s.color; g.lineWidth = 2 * dpr; g.setLineDash((s.dash || []).map((v) => v * dpr));
    g.beginPath(); g.moveTo(x0, yy); g.lineTo(x0 + swatch, yy); g.stroke(); g.setLineDash([]);
    g.fillStyle = "#333";
    drawText(g, c, name, x0 + swatch + px(4), yy);
  });
}

function drawChart(ch) {
  const c = ch.canvas, g = c.getContext("2d");
  g.drawImage(ch.bg, 0, 0);
  if (!ch.list.length || !ch.X) return;
  const x = ch.X(currentEpochValue());
  g.strokeStyle = CURSOR; g.globalAlpha = 0.6; g.lineWidth = 1.5 * dpr;
  g.beginPath(); g.moveTo(x, ch.m.t); g.lineTo(x, c.height - ch.m.b); g.stroke();
  g.globalAlpha = 1;
}

function currentEpochValue() {
  const f = frameOf(S.pos);
  return xOf(EPOCHS[f.e0]) + (xOf(EPOCHS[f.e1]) - xOf(EPOCHS[f.e0])) * f.t;
}

// The (fractional) position of time-axis value v (currentEpochValue: an epoch, or a step run's
// fractional epoch) among the records, clamped to the ends: where a linked cursor (runs side by side)
// or a live update puts the slider.
function positionOfEpoch(v) {
  const x = (k) => xOf(EPOCHS[k]);
  if (!(v > x(0))) return 0;
  if (v >= x(NE - 1)) return NE - 1;
  let k = 0;
  while (k < NE - 2 && x(k + 1) <= v) k++;
  return k + (v - x(k)) / (x(k + 1) - x(k));
}

function jumpToEpoch(ep) {
  let best = 0;
  EPOCHS.forEach((e, k) => { if (Math.abs(xOf(e) - ep) < Math.abs(xOf(EPOCHS[best]) - ep)) best = k; });
  pause();
  setPos(best);
}

let charts = [];
function buildCharts() {
  const M = DATA.metrics, Q = DATA.quality;
  // Records sit on the time axis by xOf (a step run: fractional epochs). A series may carry its own
  // epochs (another run's, side by side); the x axis spans them all.
  const mx = M.epochs.map(xOf), qx = Q.epochs.map(xOf);
  const withX = (list, xs) => list.map((s) => ({ ...s, xs: s.xs ? s.xs.map(xOf) : xs }));
  const allX = (list) => [...mx, ...list.flatMap((s) => (s.xs ? s.xs.map(xOf) : []))];
  charts = [
    makeChart($("curve-accuracy"), allX(M.accuracy), withX(M.accuracy, mx), "no accuracy recorded"),
    makeChart($("curve-loss"), allX(M.loss), withX(M.loss, mx), "no loss recorded"),
    makeChart($("curve-quality"), qx, withX(Q.series, qx), HAS_MAP ? "no quality figures" : "no map, so no map quality"),
  ];
}
