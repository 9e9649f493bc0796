// Hover: the point under the cursor and its tooltip (label, prediction, forgetting, thumbnail, text).
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
  if (!S.ready) return;   // the first view has no predictions to show yet
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

// A class as the page shows it: its name, control characters escaped (text.js).
function className(c) { return c < NC ? visible(DATA.classNames[c]) : "(none)"; }

// How far to trust where a test point was placed (epochscope.analysis.placement): it is laid on the map
// after the fit, and a point far from every probe point, or among several classes, sits "between
// clusters" whatever the model made of it.
function placementLines(set, e, i) {
  const flags = set.placement[e * set.n + i], k = set.neighbours;
  const major = set.neighbourClass[e * set.n + i], count = set.neighbourCount[e * set.n + i];
  const near = major < NC ? `nearest probe points on the map: ${count} of ${k} are ${className(major)}` : "";
  const out = [];
  if (flags & 1) out.push("placed far from every probe point: where it lies between clusters says little");
  else if (flags & 2) out.push("placed among probe points of several classes: its place on the map is uncertain");
  if (flags && near) out.push(near);
  return out;
}

function showTooltip() {
  const tip = $("tooltip");
  if (!S.hover) { tip.hidden = true; return; }
  const set = S.hover.split === "test" ? T : P, i = S.hover.i;
  const e = Math.round(S.pos), label = set.labels[i], pred = set.predictions[e * set.n + i];
  const lines = [
    `${S.hover.split === "test" ? "test" : "probe"} example #${set.index[i]}`,
    `label: ${className(label)}`,
    pred === set.unknown ? `predicted at ${epochName(EPOCHS[e])}: not recorded`
      : pred === set.outside ? `predicted at ${epochName(EPOCHS[e])}: a class outside the run's classes ✗`
      : `predicted at ${epochName(EPOCHS[e])}: ${className(pred)} ${pred === label ? "✓" : "✗"}`,
  ];
  if (set.forgetting) lines.push(`forgotten ${set.forgetting[i]} time${set.forgetting[i] === 1 ? "" : "s"}`);
  if (set.placement) lines.push(...placementLines(set, e, i));
  $("tip-text").textContent = lines.join("\n");
  // An example's text (or a tabular example's values): data, set as text so markup in it shows as written.
  const example = $("tip-example");
  example.hidden = !set.texts;
  example.textContent = set.texts ? visible(set.texts[i], "\n\t") : "";   // its own line breaks and tabs kept
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
