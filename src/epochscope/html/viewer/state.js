// The report's data, constants, class colours, the viewer's mutable state and the text registry, read by
// every module. The modules share one function scope: epochscope/html/page.py joins them in the order of
// VIEWER_MODULES. DATA and what follows from it are `let`: a served page swaps in newer data (live.js).
let DATA = JSON.parse(document.getElementById("epochscope-data").textContent);
const $ = (id) => document.getElementById(id);
const MISSING = 65535;           // quantised coordinate of a point without a position
const QMAX = 65534;
let EPOCHS = DATA.epochs;
let NE = EPOCHS.length;
let NC = DATA.classNames.length;
let HAS_MAP = !!DATA.probe;
let FIRST = DATA.first ? DATA.first.index : NE - 1;   // the first view: the last epoch, the trained model
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const CURSOR = "#222222";        // the epoch cursor on the curves (epochscope.colors.MARKER)
// A run recorded inside epochs (DATA.time): records are numbered by step; each has its place on the
// time axis (its fractional epoch, or its step) and its name ("epoch 0.26 · step 120"). Else epochs.
// Recomputed when a served page swaps in newer data (live.js), so new records get their place too.
let TIME = null, TIME_X = null, TIME_NAME = null;
function setTime(data) {
  TIME = data.time || null;
  TIME_X = TIME ? new Map(TIME.records.map((r, k) => [r, TIME.values[k]])) : null;
  TIME_NAME = TIME ? new Map(TIME.records.map((r, k) => [r, TIME.labels[k]])) : null;
}
setTime(DATA);
function xOf(e) { return TIME_X && TIME_X.has(e) ? TIME_X.get(e) : e; }
function epochName(e) { return TIME_NAME && TIME_NAME.has(e) ? TIME_NAME.get(e) : `epoch ${e}`; }

// ------------------------------------------------------------------ colours
function hexToRgb(h) { return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)]; }
let RGB = DATA.colors.map(hexToRgb);

// ------------------------------------------------------------------ state
const S = {
  pos: FIRST, playing: false, speed: Math.min(10, Math.max(1, NE / 10)), loop: false,
  showTest: false, highlight: false, hidden: new Uint8Array(NC),
  view: { k: 1, tx: 0, ty: 0 }, mouse: null, drag: null, hover: null,
  dirty: true, frames: 0, frameTimes: [], lastShownEpoch: -1, lastTime: null, ready: false,
};
let P = null, T = null, thumbs = null;   // probe set, test set, sprite image

// ------------------------------------------------------------------ text drawn on canvases
// Every text a panel draws goes through drawText, which records its box (CSS pixels, relative to the
// canvas): the browser tests check that no two boxes overlap and that each lies inside its panel.
const TEXTS = new Map();
function clearTexts(canvas) { TEXTS.set(canvas.id, []); }
function textWidth(g, text) { return g.measureText(text).width; }

function drawText(g, canvas, text, x, y, { rotate = 0 } = {}) {
  if (!text) return;
  const m = g.measureText(text);
  const left = m.actualBoundingBoxLeft, right = m.actualBoundingBoxRight;
  const up = m.actualBoundingBoxAscent, down = m.actualBoundingBoxDescent;
  let box;
  if (rotate) {  // a quarter turn counter-clockwise: the text reads upwards from (x, y)
    g.save(); g.translate(x, y); g.rotate(-Math.PI / 2); g.fillText(text, 0, 0); g.restore();
    box = [x - up, y - right, x + down, y + left];
  } else {
    g.fillText(text, x, y);
    box = [x - left, y - up, x + right, y + down];
  }
  if (!TEXTS.has(canvas.id)) TEXTS.set(canvas.id, []);
  TEXTS.get(canvas.id).push({ text, box: box.map((v) => v / dpr) });
}

// A text cut with an ellipsis until it fits width (canvas pixels) in the current font.
function fitText(g, text, width) {
  if (textWidth(g, text) <= width) return text;
  let lo = 0, hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (textWidth(g, text.slice(0, mid) + "…") <= width) lo = mid; else hi = mid - 1;
  }
  return lo > 0 ? text.slice(0, lo) + "…" : "";
}
