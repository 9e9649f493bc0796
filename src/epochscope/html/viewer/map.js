// The 2-D map: points written straight into one ImageData pixel buffer, interpolated between epochs.
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
