// Accuracy, loss and map-quality curves with the linked time cursor; a click jumps to that epoch.
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
    g.strokeStyle = s.color; g.lineWidth = 1.5 * dpr; g.beginPath();
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
  // Colours by name from the payload (epochscope.colors), as curves.png and quality.png draw them.
  const pick = (keys) => keys.map((k) => ({ name: k, xs: M.epochs, values: M.series[k], color: M.colors[k] }));
  const quality = Object.keys(Q.series).filter((k) => Q.series[k].some((v) => v != null))
    .map((k) => ({ name: k, xs: Q.epochs, values: Q.series[k], color: Q.colors[k] }));
  charts = [
    makeChart($("curve-accuracy"), M.epochs, pick(M.accuracy), "no accuracy recorded"),
    makeChart($("curve-loss"), M.epochs, pick(M.loss), "no loss recorded"),
    makeChart($("curve-quality"), Q.epochs, quality, "no quality figures"),
  ];
}
