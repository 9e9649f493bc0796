// The bottom panels of the current epoch: the confusion matrix and the network.
// ------------------------------------------------------------------ confusion matrix of the current epoch
// Counts of the split DATA.confusionSplit names (the test set when the run has one, as confusion.png), of
// the classes DATA.confusionNames (every class, or the most confused ones and "all other classes").
let confusion = null;
let CN = (DATA.confusionNames || []).length;

function confusionAt(e) {   // the K x K counts of epoch index e, or null while only the first view is known
  if (confusion) return confusion.subarray(e * CN * CN, (e + 1) * CN * CN);
  if (e === FIRST && DATA.first && DATA.first.confusion) return DATA.first.confusion;
  return null;
}

function drawConfusion(e) {
  const c = $("confusion"), g = c.getContext("2d");
  c.width = Math.max(1, Math.round(c.clientWidth * dpr)); c.height = Math.max(1, Math.round(c.clientHeight * dpr));
  clearTexts(c);
  g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height);
  const px = (v) => v * dpr;
  g.textBaseline = "alphabetic"; g.textAlign = "left"; g.fillStyle = "#333";
  g.font = `${px(11)}px ${FONT}`;
  const counts = confusionAt(e);
  if (!DATA.confusion) { drawText(g, c, fitText(g, "no predictions recorded", c.width - px(8)), px(4), px(16)); return; }
  if (!counts) { drawText(g, c, "reading the counts…", px(4), px(16)); return; }
  let total = 0;
  for (let k = 0; k < counts.length; k++) total += counts[k];
  const missing = DATA.confusionMissing ? DATA.confusionMissing[e] : 0, all = total + missing;
  const right = DATA.confusionCorrect ? DATA.confusionCorrect[e] : 0;
  // Examples without a prediction, or predicted as a class the run does not name, count as wrong,
  // as in confusion.png (draw/confusion.py).
  const outside = DATA.confusionOutside ? DATA.confusionOutside[e] : 0, none = missing - outside;
  const notes = [none ? `${none} without prediction` : "", outside ? `${outside} outside the classes` : ""].filter(Boolean);
  const head = `${epochName(EPOCHS[e])}: ${all ? (100 * right / all).toFixed(1) : "–"}% right of ${all.toLocaleString()}` +
    (notes.length ? ` (${notes.join(", ")})` : "");
  drawText(g, c, fitText(g, head, c.width - px(8)), px(4), px(14));
  g.fillStyle = "#666";
  drawText(g, c, fitText(g, "rows: true class · columns: predicted", c.width - px(8)), px(4), px(29));
  // Class names: measured, at 10 px (8 px if long), cut only beyond a third of the panel.
  const names = DATA.confusionNames.map((n) => visible(n));   // class names, escaped (text.js)
  let size = 10;
  g.font = `${px(size)}px ${FONT}`;
  if (Math.max(...names.map((n) => textWidth(g, n))) > c.width * 0.33) { size = 8; g.font = `${px(size)}px ${FONT}`; }
  const rowNames = names.map((n) => fitText(g, n, c.width * 0.33));
  const nameW = Math.max(...rowNames.map((n) => textWidth(g, n)));
  const top = px(38), left = nameW + px(8);
  // Column names: across when they fit a cell, upwards when a cell is at least a line high, else none.
  const guess = Math.min(c.width - left - px(6), c.height - top - px(20)) / CN;
  const across = Math.max(...names.map((n) => textWidth(g, n))) <= guess - px(3);
  const upward = !across && guess >= px(size + 2);
  const bottom = across ? px(size + 8) : upward ? nameW + px(8) : px(4);
  const side = Math.max(px(20), Math.min(c.width - left - px(6), c.height - top - bottom));
  const cell = side / CN;
  let numberFont = Math.max(7, Math.min(11, cell / dpr / 2.6));
  for (let r = 0; r < CN; r++) {
    let rowSum = 0;
    for (let k = 0; k < CN; k++) rowSum += counts[r * CN + k];
    for (let k = 0; k < CN; k++) {
      const v = counts[r * CN + k], f = rowSum ? v / rowSum : 0;
      const shade = Math.round(255 - 200 * f);
      g.fillStyle = r === k ? `rgb(${shade},${Math.round(255 - 120 * f)},${shade})` : `rgb(255,${shade},${shade})`;
      g.fillRect(left + k * cell, top + r * cell, cell - 0.5, cell - 0.5);
    }
  }
  // The counts in the cells, where they fit.
  g.font = `${px(numberFont)}px ${FONT}`; g.textAlign = "center"; g.textBaseline = "middle";
  for (let r = 0; r < CN; r++) {
    let rowSum = 0;
    for (let k = 0; k < CN; k++) rowSum += counts[r * CN + k];
    for (let k = 0; k < CN; k++) {
      const v = counts[r * CN + k];
      if (!v || textWidth(g, String(v)) > cell - px(4) || cell < px(numberFont + 4)) continue;
      g.fillStyle = rowSum && v / rowSum > 0.6 ? "#fff" : "#333";
      drawText(g, c, String(v), left + (k + 0.5) * cell, top + (r + 0.5) * cell);
    }
  }
  g.font = `${px(size)}px ${FONT}`; g.fillStyle = "#555";
  if (cell >= px(size + 2)) {
    g.textAlign = "right"; g.textBaseline = "middle";
    rowNames.forEach((n, r) => drawText(g, c, n, left - px(4), top + (r + 0.5) * cell));
  }
  if (across) {
    g.textAlign = "center"; g.textBaseline = "top";
    names.forEach((n, k) => drawText(g, c, n, left + (k + 0.5) * cell, top + side + px(4)));
  } else if (upward) {
    g.textAlign = "right"; g.textBaseline = "middle";
    rowNames.forEach((n, k) => drawText(g, c, n, left + (k + 0.5) * cell, top + side + px(4), { rotate: true }));
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

function edgesAt(f) {   // {src, dst, width, change, start, end} of network frame f
  const N = DATA.network;
  if (NET) return { ...NET, start: N.offsets[f], end: N.offsets[f + 1] };
  if (N.first && N.first.frame === f) return { ...N.first, start: 0, end: N.first.src.length };
  return null;
}

function drawNetwork(e) {
  const N = DATA.network, c = $("network");
  if (!N || !N.available) return;
  const g = c.getContext("2d");
  c.width = Math.max(1, Math.round(c.clientWidth * dpr)); c.height = Math.max(1, Math.round(c.clientHeight * dpr));
  clearTexts(c);
  g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height);
  const px = (v) => v * dpr;
  const f = N.frameOf[e];
  g.font = `${px(11)}px ${FONT}`; g.fillStyle = "#666"; g.textAlign = "left"; g.textBaseline = "alphabetic";
  if (f < 0) {   // no weights at this epoch, or not every layer of the chain (N.lacking names them)
    const lacks = N.lacking && N.lacking[e];
    const why = lacks ? `lacks layer${lacks.includes(",") ? "s" : ""} ${visible(lacks)}: not drawn` : "holds no weights";
    drawText(g, c, fitText(g, `${epochName(EPOCHS[e])} ${why}`, c.width - px(8)), px(4), px(16)); return;
  }
  const edges = edgesAt(f);
  if (!edges) { drawText(g, c, "reading the weights…", px(4), px(16)); return; }
  // Each column is centred in a slot of equal width; its label is fitted to the slot (smaller font first,
  // then cut), so labels never run into each other at any width.
  const cols = N.columns, nCols = cols.length, slot = c.width / nCols;
  let size = 10;
  const lines = N.labels.map((l) => l.split("\n").map((t) => visible(t)));   // layer names, escaped (text.js)
  for (size = 10; size > 8; size--) {
    g.font = `${px(size)}px ${FONT}`;
    if (lines.every((ls) => ls.every((t) => textWidth(g, t) <= slot - px(6)))) break;
  }
  g.font = `${px(size)}px ${FONT}`;
  const fitted = lines.map((ls) => ls.map((t) => fitText(g, t, slot - px(6))));
  const lineH = px(size + 3), labelH = Math.max(...fitted.map((ls) => ls.length)) * lineH + px(4);
  const summaryH = nCols > 1 ? px(15) : 0;
  const tallest = Math.max(...N.counts);
  const free = c.height - labelH - summaryH - px(8);
  const r = Math.max(px(2), Math.min(px(7), 0.32 * free / Math.max(tallest - 1, 1)));
  const span = Math.max(px(1), free - 2 * r);
  const X = (x) => slot / 2 + x * (c.width - slot), Y = (y) => summaryH + r + px(4) + (1 - y) * span;
  const nodes = N.nodes;
  g.lineCap = "butt";
  for (let k = edges.start; k < edges.end; k++) {
    const a = nodes[edges.src[k]], b = nodes[edges.dst[k]];
    g.strokeStyle = N.palette[edges.change[k]];
    g.lineWidth = (N.minWidth + (N.lineWidth - N.minWidth) * edges.width[k] / 255) * dpr;
    g.beginPath(); g.moveTo(X(a[0]), Y(a[1])); g.lineTo(X(b[0]), Y(b[1])); g.stroke();
  }
  g.fillStyle = "#fff"; g.strokeStyle = "#000"; g.lineWidth = r > px(3) ? dpr : 0.6 * dpr;
  for (const [x, y] of nodes) { g.beginPath(); g.arc(X(x), Y(y), r, 0, 2 * Math.PI); g.fill(); g.stroke(); }
  g.fillStyle = "#444"; g.textAlign = "center"; g.textBaseline = "top";
  fitted.forEach((ls, k) => ls.forEach((t, j) => drawText(g, c, t, X(cols[k]), c.height - labelH + px(2) + j * lineH)));
  // Between the columns, above the edges: the change of each layer's mean |w| (as network.gif).
  const sums = N.summaries ? N.summaries[f] : null;
  if (sums) {
    g.font = `${px(9)}px ${FONT}`; g.textBaseline = "top";
    sums.forEach((sm, k) => {
      if (!sm) return;
      let pct = (100 * sm[0]).toFixed(1);
      if (pct === "-0.0") pct = "0.0";   // a change that rounds to zero reads "+0.0%", as in network.gif
      const sign = pct.startsWith("-") ? "" : "+";
      const text = [`mean |w| ${sign}${pct}%`, `|w| ${sign}${pct}%`, `${sign}${pct}%`]
        .find((t) => textWidth(g, t) <= slot - px(4));
      if (!text) return;
      g.fillStyle = sm[1];
      drawText(g, c, text, (X(cols[k]) + X(cols[k + 1])) / 2, px(2));
    });
  }
}
