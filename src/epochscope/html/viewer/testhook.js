// window.epochscope: the scripting API for the browser tests and the benchmark (only in reports built
// with test_hook=True; reports for people do not carry it).
function fresh() { if (S.dirty && HAS_MAP) drawMap(); }  // the hook reads positions of the state just set, not the last frame

function screenPos(set, i) {
  fresh();
  if (!set || i < 0 || i >= set.n || Number.isNaN(set.sx[i])) return null;
  const r = map.getBoundingClientRect();
  return { x: r.left + set.sx[i] / dpr, y: r.top + set.sy[i] / dpr };
}

window.epochscope = {
  ready,
  epochs: () => EPOCHS.slice(),
  epoch: () => EPOCHS[Math.round(S.pos)],
  position: () => S.pos,
  setEpoch(epoch) { const k = EPOCHS.indexOf(epoch); if (k < 0) throw new Error(`no map for epoch ${epoch}`); pause(); setPos(k); drawAll(); },
  setPosition(p) { pause(); setPos(p); drawAll(); },
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
  view: () => ({ ...S.view }),   // zoom and pan
  liveUpdates: () => (typeof liveUpdates === "undefined" ? 0 : liveUpdates),   // newer data swapped in (live.js)
  confusion() {   // the counts the panel shows at the current epoch, as rows of [true][predicted]
    const base = Math.round(S.pos) * NC * NC;
    return Array.from({ length: NC }, (_, r) => Array.from(confusion.subarray(base + r * NC, base + (r + 1) * NC)));
  },
  toggleClass,
  visible,   // viewer/text.js: a text as the page shows it
  label: (i, split = "probe") => className((split === "test" ? T : P).labels[i]),
  showTest(v) { S.showTest = !!v; $("show-test").checked = !!v; S.dirty = true; drawAll(); },
  beyond: () => { fresh(); return S.beyond || 0; },
  discRadius: () => (discK ? discK.reach : 0),
  // Every text a canvas panel drew, as page boxes: [{canvas, text, box: [x0, y0, x1, y1], panel: [x0, y0, x1, y1]}].
  textBoxes() {
    const out = [];
    for (const [id, list] of TEXTS) {
      const c = $(id);
      if (!c || c.hidden || !c.offsetParent) continue;
      const r = c.getBoundingClientRect();
      for (const t of list) {
        out.push({ canvas: id, text: t.text, box: [r.left + t.box[0], r.top + t.box[1], r.left + t.box[2], r.top + t.box[3]],
                   panel: [r.left, r.top, r.right, r.bottom] });
      }
    }
    return out;
  },
  // The plot area of a curve panel in page pixels: [x0, y0, x1, y1] and the epochs at its ends.
  chartArea(id) {
    const ch = charts.find((c) => c.canvas.id === id), r = ch.canvas.getBoundingClientRect(), m = ch.m;
    return { box: [r.left + m.l / dpr, r.top + m.t / dpr, r.right - m.r / dpr, r.bottom - m.b / dpr], x0: ch.x0, x1: ch.x1 };
  },
};
