// The report's data, constants, class colours and the viewer's mutable state, read by every module.
// The modules share one function scope: epochscope/html/page.py joins them in the order of VIEWER_MODULES.
const DATA = JSON.parse(document.getElementById("epochscope-data").textContent);
const $ = (id) => document.getElementById(id);
const MISSING = 65535;           // quantised coordinate of a point without a position
const QMAX = 65534;
const EPOCHS = DATA.epochs;
const NE = EPOCHS.length;
const NC = DATA.classNames.length;

// ------------------------------------------------------------------ colours
function hexToRgb(h) { return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)]; }
const RGB = DATA.colors.map(hexToRgb);
const ABGR = RGB.map(([r, g, b]) => ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0);

// ------------------------------------------------------------------ state
const S = {
  pos: 0, playing: false, speed: Math.min(10, Math.max(1, NE / 10)), loop: false,
  showTest: true, highlight: false, hidden: new Uint8Array(NC),
  view: { k: 1, tx: 0, ty: 0 }, mouse: null, drag: null, hover: null,
  dirty: true, frames: 0, frameTimes: [], lastShownEpoch: -1, lastTime: null,
};
let P = null, T = null, thumbs = null;   // probe set, test set, sprite image
