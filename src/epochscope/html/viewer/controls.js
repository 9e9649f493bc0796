// Playback (the animation-frame loop) and every control: buttons, slider, legend, zoom, pan, keys.
// ------------------------------------------------------------------ playback
function setPos(p) {
  if (!S.ready) return;   // the first view stays until the data are decoded (a fraction of a second)
  S.pos = Math.max(0, Math.min(NE - 1, p));
  $("slider").value = String(S.pos);
  S.dirty = true;
}
function play() {
  if (NE < 2) return;
  if (S.pos >= NE - 1) setPos(0);
  S.playing = true; S.lastTime = null; S.frameTimes = [];
  $("play").textContent = "❚❚ Pause";
}
function pause() { S.playing = false; $("play").textContent = "▶ Play"; S.dirty = true; }

function updateLabels() {
  const e = Math.round(S.pos);
  if (e === S.lastShownEpoch) return;
  S.lastShownEpoch = e;
  $("epoch-label").textContent = `${epochName(EPOCHS[e])} (${e + 1} of ${NE})`;
  drawConfusion(e);
  drawNetwork(e);
  if (S.hover) showTooltip();
}

function tick(now) {
  if (S.playing) {
    if (S.lastTime != null) {
      let p = S.pos + (now - S.lastTime) / 1000 * S.speed;
      if (p >= NE - 1) { if (S.loop) p = p % (NE - 1); else { p = NE - 1; pause(); } }
      setPos(p);
    }
    S.lastTime = now;
  }
  if (S.dirty) {
    S.dirty = false;
    if (HAS_MAP) drawMap();
    for (const ch of charts) drawChart(ch);
    updateLabels();
    S.frames++;
    S.frameTimes.push(now);
    if (S.frameTimes.length > 240) S.frameTimes.shift();
  }
  requestAnimationFrame(tick);
}

// ------------------------------------------------------------------ interaction
function setupControls() {
  const slider = $("slider");
  slider.max = String(Math.max(0, NE - 1));
  slider.addEventListener("input", () => { pause(); setPos(parseFloat(slider.value)); });
  $("play").addEventListener("click", () => (S.playing ? pause() : play()));
  const speed = $("speed");
  for (const v of [0.5, 1, 2, 5, 10, 20]) {
    const o = document.createElement("option"); o.value = String(v); o.textContent = `${v} epoch${v === 1 ? "" : "s"}/s`;
    speed.append(o);
  }
  const nearestSpeed = [0.5, 1, 2, 5, 10, 20].reduce((a, b) => (Math.abs(b - S.speed) < Math.abs(a - S.speed) ? b : a));
  S.speed = nearestSpeed; speed.value = String(nearestSpeed);
  speed.addEventListener("change", () => { S.speed = parseFloat(speed.value); });
  $("loop").addEventListener("change", (ev) => { S.loop = ev.target.checked; });
  $("show-test").checked = S.showTest;
  $("show-test").addEventListener("change", (ev) => { S.showTest = ev.target.checked; S.dirty = true; });
  if (!DATA.test) $("test-toggle").hidden = true;
  if (!HAS_MAP) { $("test-toggle").hidden = true; $("highlight").parentElement.hidden = true; $("reset-view").hidden = true; }
  $("highlight").addEventListener("change", (ev) => { S.highlight = ev.target.checked; S.dirty = true; });
  $("reset-view").addEventListener("click", resetView);

  const legend = $("legend");
  if (HAS_MAP && !DATA.legend) {  // too many classes for a legend (as the static maps)
    const note = document.createElement("p"); note.className = "note";
    note.textContent = `${NC.toLocaleString()} classes: too many to list; colours follow the class order round the colour wheel, and hovering a point names its class`;
    legend.append(note);
  }
  if (HAS_MAP && DATA.legend) DATA.classNames.forEach((name, c) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "legend-item"; b.dataset.cls = String(c); b.setAttribute("aria-pressed", "true");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = DATA.colors[c];
    const label = document.createElement("span"); label.textContent = visible(name);
    b.title = visible(name); b.append(sw, label);
    b.addEventListener("click", () => toggleClass(c));
    legend.append(b);
  });

  map.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = map.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
    const f = Math.exp(-ev.deltaY * 0.0015), v = S.view;
    const k = Math.max(0.2, Math.min(200, v.k * f)), g = k / v.k;
    v.tx = mx - (mx - v.tx) * g; v.ty = my - (my - v.ty) * g; v.k = k;   // keep the point under the cursor
    S.dirty = true;
  }, { passive: false });
  map.addEventListener("pointerdown", (ev) => {
    S.drag = { x: ev.clientX, y: ev.clientY, tx: S.view.tx, ty: S.view.ty };
    map.setPointerCapture(ev.pointerId); map.classList.add("dragging");
  });
  map.addEventListener("pointermove", (ev) => {
    const r = map.getBoundingClientRect();
    S.mouse = { x: ev.clientX - r.left, y: ev.clientY - r.top };
    if (S.drag) { S.view.tx = S.drag.tx + ev.clientX - S.drag.x; S.view.ty = S.drag.ty + ev.clientY - S.drag.y; }
    S.dirty = true;
  });
  const endDrag = () => { S.drag = null; map.classList.remove("dragging"); };
  map.addEventListener("pointerup", endDrag);
  map.addEventListener("pointercancel", endDrag);
  map.addEventListener("pointerleave", () => { S.mouse = null; S.hover = null; showTooltip(); S.dirty = true; });
  map.addEventListener("dblclick", resetView);
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement || ev.target instanceof HTMLButtonElement) return;
    if (ev.key === " ") { ev.preventDefault(); S.playing ? pause() : play(); }
    else if (ev.key === "ArrowRight") { pause(); setPos(Math.floor(S.pos) + 1); }
    else if (ev.key === "ArrowLeft") { pause(); setPos(Math.ceil(S.pos) - 1); }
  });
  // Resizing a canvas clears it: redraw in the same task, so no frame (or screenshot) shows it blank.
  window.addEventListener("resize", () => { resizeAll(); drawAll(); });
}

function resetView() { S.view = { k: 1, tx: 0, ty: 0 }; S.dirty = true; }

function toggleClass(c, visible) {
  S.hidden[c] = visible === undefined ? (S.hidden[c] ? 0 : 1) : (visible ? 0 : 1);
  const b = document.querySelector(`#legend button[data-cls="${c}"]`);
  if (b) b.setAttribute("aria-pressed", S.hidden[c] ? "false" : "true");
  S.dirty = true;
}

function resizeAll() {
  if (HAS_MAP) resizeMap(); else dpr = window.devicePixelRatio || 1;
  for (const ch of charts) renderChartBackground(ch);
  S.lastShownEpoch = -1;
  S.dirty = true;
}
