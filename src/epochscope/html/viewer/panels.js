// The side panels of the current epoch: the confusion matrix and the network.
// ------------------------------------------------------------------ confusion matrix of the current epoch
// Counts of the split DATA.confusionSplit names (the test set when the run has one, as confusion.png).
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
  // Examples without a prediction count as wrong, as in confusion.png (draw/confusion.py).
  const missing = DATA.confusionMissing ? DATA.confusionMissing[e] : 0, all = total + missing;
  const outside = DATA.confusionOutside ? DATA.confusionOutside[e] : 0, none = missing - outside;
  const left = [none ? `${none} without prediction` : "", outside ? `${outside} outside the classes` : ""].filter(Boolean);
  g.fillText(`epoch ${EPOCHS[e]}: ${total ? (100 * right / all).toFixed(1) : "–"}% right` +
    (left.length ? ` (${left.join(", ")})` : "") + " · rows true, columns predicted", 2 * dpr, 12 * dpr);
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
