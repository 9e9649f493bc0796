// The 2-D map: points written straight into one ImageData pixel buffer as anti-aliased discs (as the GIF
// frames draw them: epochscope/draw/raster.py), interpolated between epochs.
const map = $("map");
const mctx = map.getContext("2d");
let img = null, pix = null, dpr = 1;
let discK = null, ringK = null;   // coverage kernels per sub-pixel position (see kernels)
const SUB = 4;                    // sub-pixel positions per axis

// The radius the GIF frames use for n points over an area (epochscope.draw.raster.disc_radius_for).
function discRadius(n, area) { return Math.min(5, Math.max(1.2, Math.sqrt(0.25 * area / (Math.PI * Math.max(n, 1))))); }

// Coverage of the pixels near a disc (or a ring from r0 to r1) whose centre sits at each of SUB x SUB
// sub-pixel positions: [offsets dx, dy and coverage a], the analytic "r + 0.5 - distance" rule.
function kernels(r0, r1) {
  const out = [], R = Math.ceil(r1 + 1);
  for (let sy = 0; sy < SUB; sy++) for (let sx = 0; sx < SUB; sx++) {
    const cx = (sx + 0.5) / SUB, cy = (sy + 0.5) / SUB, dx = [], dy = [], a = [];
    for (let y = -R; y <= R; y++) for (let x = -R; x <= R; x++) {
      const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
      let c = Math.min(1, r1 + 0.5 - d);
      if (r0 > 0) c = Math.min(c, d - (r0 - 0.5));
      if (c > 0) { dx.push(x); dy.push(y); a.push(c); }
    }
    out.push({ dx: Int16Array.from(dx), dy: Int16Array.from(dy), a: Float32Array.from(a) });
  }
  out.reach = R;
  return out;
}

function resizeMap() {
  dpr = window.devicePixelRatio || 1;
  const w = Math.max(50, Math.round(map.clientWidth * dpr)), h = Math.max(50, Math.round(map.clientHeight * dpr));
  if (map.width !== w || map.height !== h) { map.width = w; map.height = h; }
  img = mctx.createImageData(map.width, map.height);
  pix = img.data;
  const n = P ? P.n : (DATA.probe ? DATA.probe.count : 1);
  const r = discRadius(n, map.clientWidth * map.clientHeight * 0.6) * dpr;  // the GIF's axes cover ~60 % of a frame
  const rt = Math.max(2.4 * dpr, r * 1.2);
  discK = kernels(0, r);
  ringK = kernels(rt, rt + 1.3 * dpr);
  S.dirty = true;
}

// Quantised coordinates -> screen: the first view fits the maps' bounds (DATA.view) into the canvas with
// equal scales; the quantisation spans DATA.bounds, which holds every point.
function baseTransform() {
  const [bx0, bx1, by0, by1] = DATA.bounds;
  const [vx0, vx1, vy0, vy1] = DATA.view || DATA.bounds;
  const vw = Math.max(vx1 - vx0, 1e-12), vh = Math.max(vy1 - vy0, 1e-12);
  const m = 16 * dpr, W = map.width, H = map.height;
  const k = Math.min((W - 2 * m) / vw, (H - 2 * m) / vh);
  const ox = (W - vw * k) / 2, oy = (H - vh * k) / 2, v = S.view;
  return { ax: v.k * k * (bx1 - bx0) / QMAX, bx: v.k * (ox + (bx0 - vx0) * k) + v.tx * dpr,
           ay: -v.k * k * (by1 - by0) / QMAX, by: v.k * (H - oy - (by0 - vy0) * k) + v.ty * dpr };
}

function frameOf(pos) {
  const e0 = Math.max(0, Math.min(NE - 1, Math.floor(pos)));
  const e1 = Math.min(NE - 1, e0 + 1);
  return { e0, e1, t: Math.max(0, Math.min(1, pos - e0)) };
}

function project(set, f, tr) {   // interpolated screen positions of every point (NaN when hidden)
  const { n, coords, labels, sx, sy } = set;
  // A first-view set holds one epoch: it is drawn as it is, whatever the position.
  const o0 = set.oneEpoch ? 0 : f.e0 * n * 2, o1 = set.oneEpoch ? 0 : f.e1 * n * 2, t = set.oneEpoch ? 0 : f.t;
  for (let i = 0; i < n; i++) {
    const x0 = coords[o0 + 2 * i], y0 = coords[o0 + 2 * i + 1], x1 = coords[o1 + 2 * i], y1 = coords[o1 + 2 * i + 1];
    if (x0 === MISSING || S.hidden[labels[i]] || (x1 === MISSING && t > 0)) { sx[i] = NaN; sy[i] = NaN; continue; }
    const x = t > 0 ? x0 + (x1 - x0) * t : x0, y = t > 0 ? y0 + (y1 - y0) * t : y0;
    sx[i] = tr.ax * x + tr.bx; sy[i] = tr.ay * y + tr.by;
  }
}

// Blend each point's kernel in its class colour over the pixels ("over", as the GIF frames composite).
function stamp(set, K, fade) {
  const W = map.width, H = map.height, { n, sx, sy, labels } = set, R = K.reach;
  for (let i = 0; i < n; i++) {
    const x = sx[i], y = sy[i];
    if (!(x >= R && y >= R && x < W - R && y < H - R)) continue;  // also skips NaN; edge points: see markBeyond
    const ix = Math.floor(x), iy = Math.floor(y);
    const k = K[Math.min(SUB - 1, Math.floor((y - iy) * SUB)) * SUB + Math.min(SUB - 1, Math.floor((x - ix) * SUB))];
    const [r, g, b] = RGB[labels[i]] || [0, 0, 0];
    for (let j = 0; j < k.a.length; j++) {
      const a = k.a[j] * fade, at = ((iy + k.dy[j]) * W + ix + k.dx[j]) * 4;
      pix[at] += (r - pix[at]) * a; pix[at + 1] += (g - pix[at + 1]) * a; pix[at + 2] += (b - pix[at + 2]) * a;
    }
  }
}

// At the reset view, points beyond the canvas are drawn at its edge as small triangles pointing their way
// (the first view fits robust bounds, so a few outliers may lie beyond it): shown, never dropped.
function markBeyond(set) {
  const v = S.view;
  if (v.k !== 1 || v.tx !== 0 || v.ty !== 0) return 0;
  const W = map.width, H = map.height, pad = 6 * dpr, s = 4.5 * dpr, { n, sx, sy, labels } = set;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const x = sx[i], y = sy[i];
    if (Number.isNaN(x) || (x >= 0 && y >= 0 && x < W && y < H)) continue;
    count++;
    const cx = Math.min(W - pad, Math.max(pad, x)), cy = Math.min(H - pad, Math.max(pad, y));
    const over = [-x, x - W, -y, y - H], side = over.indexOf(Math.max(...over));
    const dir = [[-1, 0], [1, 0], [0, -1], [0, 1]][side];
    mctx.beginPath();
    mctx.moveTo(cx + dir[0] * s, cy + dir[1] * s);
    mctx.lineTo(cx - dir[0] * s * 0.6 - dir[1] * s * 0.8, cy - dir[1] * s * 0.6 - dir[0] * s * 0.8);
    mctx.lineTo(cx - dir[0] * s * 0.6 + dir[1] * s * 0.8, cy - dir[1] * s * 0.6 + dir[0] * s * 0.8);
    mctx.closePath();
    mctx.fillStyle = DATA.colors[labels[i]] || "#000"; mctx.fill();
    mctx.strokeStyle = "#222"; mctx.lineWidth = 0.8 * dpr; mctx.stroke();
  }
  return count;
}

function drawMap() {
  if (!P) return;
  const f = frameOf(S.pos);
  const tr = baseTransform();
  pix.fill(255);
  project(P, f, tr);
  stamp(P, discK, 1);
  if (T) {
    project(T, f, tr);
    if (S.showTest) stamp(T, ringK, 0.9);   // lighter than the probe points: a ring in the class colour
    else T.sx.fill(NaN);
  }
  mctx.putImageData(img, 0, 0);
  S.beyond = markBeyond(P) + (T && S.showTest ? markBeyond(T) : 0);
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
