(() => {
"use strict";
// The page of `epochscope serve`: the runs list (GET /runs.json every second) and the chosen run's viewer
// (or several runs side by side), each in a frame served by /view. Every text from a run is set with
// textContent, never as markup. The frames are made once per choice, so their viewers keep their place
// (epoch cursor, zoom, hover) while their own live.js swaps newer data in; this page only passes each
// frame's epoch cursor to the others (runs side by side).
const $ = (id) => document.getElementById(id);

// visible(text): a text from a run with its control characters shown escaped (viewer/text.js, joined in here
// by the server: the report's viewer shows names the same way).
/* __VIEWER_TEXT__ */

let shown = [];          // the paths of the runs shown
let runs = [];           // the last /runs.json entries
const ticked = new Set();
let drawn = "";          // what the list shows now (runs and the shown paths), to redraw only on a change

// The address says what is shown (#run=A[&run=B...]): a choice in the list is a new history entry, and
// the page follows the address when it changes (Back, Forward, an edited hash).
function fromHash() {
  const h = new URLSearchParams(window.location.hash.slice(1));
  return h.getAll("run");
}
function hashOf(paths) {
  const h = new URLSearchParams();
  for (const p of paths) h.append("run", p);
  return `#${h.toString()}`;
}
function toHash(paths) {
  const hash = hashOf(paths);
  if (hash !== window.location.hash) window.history.pushState(null, "", hash);
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = visible(text);
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}

function span(list) {
  if (!list || !list.length) return "none yet";
  return list.length === 1 ? `${list[0]}` : `${list[0]}–${list[list.length - 1]} (${list.length})`;
}

function drawList() {
  // Rebuilt only when something changed: rebuilding every poll lost the keyboard focus and any click
  // that spanned a redraw.
  const now = JSON.stringify([runs, shown]);
  if (now === drawn) return;
  drawn = now;
  const body = $("runs");
  body.textContent = "";
  for (const r of runs) {
    const tr = document.createElement("tr");
    tr.dataset.path = r.path;
    if (shown.includes(r.path)) tr.className = "current";
    const tick = document.createElement("td");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = ticked.has(r.path); box.disabled = !!r.error && !r.ready;
    box.setAttribute("aria-label", `tick ${visible(r.name)}`);
    box.addEventListener("change", () => { if (box.checked) ticked.add(r.path); else ticked.delete(r.path); });
    tick.append(box); tr.append(tick);
    const name = document.createElement("td");
    const b = document.createElement("button");
    b.type = "button"; b.className = "name"; b.textContent = visible(r.name); b.title = visible(r.path);
    b.addEventListener("click", () => show([r.path]));
    name.append(b); tr.append(name);
    cell(tr, (r.layers || []).join(", ") + (r.layer && r.layers.length > 1 ? ` (map: ${r.layer})` : ""));
    cell(tr, span(r.epochs));
    // A run shown with what `epochscope check` warns of (an epoch folder that is a link, left out) says so.
    const state = cell(tr, r.error ? r.error : r.status, r.error ? "error" : "");
    if (!r.error && r.warning) {
      const w = document.createElement("div"); w.className = "warning"; w.textContent = visible(r.warning);
      state.append(w);
    }
    body.append(tr);
  }
}

function frameFor(paths, i) {
  const q = new URLSearchParams();
  for (const p of paths) q.append("run", p);
  q.set("i", String(i));
  const f = document.createElement("iframe");
  f.className = "run"; f.title = visible(paths[i]);
  f.src = `/view?${q.toString()}`;
  return f;
}

// The viewers appear once every run shown has maps; until then a line says what the embedder is doing.
function drawView() {
  const view = $("view");
  const entries = shown.map((p) => runs.find((r) => r.path === p));
  const ready = entries.length && entries.every((r) => r && r.ready);
  const have = view.querySelectorAll("iframe").length;
  if (ready && have === shown.length) return;
  if (!ready) {
    view.textContent = "";
    if (!shown.length) return;
    const w = document.createElement("p"); w.className = "waiting";
    w.textContent = visible(entries.map((r, k) => `${r ? r.name : shown[k]}: ${r ? (r.error || r.status) : "not found under LOGDIR"}`).join(" · "));
    view.append(w);
    return;
  }
  view.textContent = "";
  view.className = shown.length > 1 ? "many" : "one";
  shown.forEach((p, i) => view.append(frameFor(shown, i)));
}

// What the page shows when the address names nothing: the first run that can be read.
function firstRun() {
  return (runs.find((r) => !r.error) || runs[0]).path;
}

function same(a, b) {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

function show(paths) {
  shown = paths.slice();
  toHash(shown);
  $("view").textContent = "";
  drawList();
  drawView();
}

// Back, Forward or an edited address: show what it names (nothing named: the first run, as at load).
function followHash() {
  let paths = fromHash();
  if (!paths.length && runs.length) paths = [firstRun()];
  if (same(paths, shown)) return;
  shown = paths;
  $("view").textContent = "";
  drawList();
  drawView();
}
window.addEventListener("hashchange", followHash);
window.addEventListener("popstate", followHash);

// Runs side by side: a frame's viewer posts its epoch cursor (viewer/link.js); the others follow.
window.addEventListener("message", (ev) => {
  const frames = Array.from(document.querySelectorAll("#view iframe"));
  const from = frames.find((f) => f.contentWindow === ev.source);
  if (!from || !ev.data || ev.data.type !== "epochscope-cursor") return;
  for (const f of frames) if (f !== from && f.contentWindow) f.contentWindow.postMessage(ev.data, window.location.origin);
});

$("compare").addEventListener("click", () => {
  const chosen = runs.map((r) => r.path).filter((p) => ticked.has(p));
  if (chosen.length < 2) { $("compare-note").textContent = "tick two or more runs recorded on the same probe"; return; }
  $("compare-note").textContent = "";
  show(chosen);
});

async function poll() {
  try {
    const res = await fetch("/runs.json", { cache: "no-store" });
    if (!res.ok) throw new Error(`the server answered ${res.status}`);
    const data = await res.json();
    runs = data.runs;
    $("logdir").textContent = visible(`${data.logdir} · maps: ${data.method}`);
    $("state").textContent = `${runs.length} run${runs.length === 1 ? "" : "s"}`;
    if (!shown.length && runs.length) shown = [firstRun()];
    drawList();
    drawView();
  } catch (err) {
    $("state").textContent = `the server does not answer (${err.message || err}); retrying`;
  }
}

shown = fromHash();
poll();
window.setInterval(poll, 1000);
})();
