// Live data (pages served by `epochscope serve`, see epochscope/serve/): every LIVE.poll ms the page asks
// the server that sent it for its runs' state (GET /runs.json: each run's "version" grows when its maps
// do) and, when a version changed, swaps the newer payload in without a reload. The user's place is kept:
// the epoch under the cursor (a cursor on the newest epoch follows new epochs, as a live view should),
// zoom and pan, the hovered point, hidden classes and the toggles.
let LIVE = DATA.live || null;   // {runs: [paths relative to LOGDIR], token, payload: URL, poll: ms}
let liveBusy = false, liveUpdates = 0;
const liveStatus = document.createElement("p");
liveStatus.id = "live-status";
liveStatus.className = "note";
$("subtitle").after(liveStatus);

async function unpackNetwork(N) {
  if (!N || !N.available) return null;
  const [src, dst, width, change] = await Promise.all([N.src, N.dst, N.width, N.change].map(unpack));
  return { src, dst, width, change };
}

async function replaceData(next) {
  await ready;
  const sameClasses = next.classNames.length === NC && next.classNames.every((n, c) => n === DATA.classNames[c]);
  if (!!next.probe !== HAS_MAP || !sameClasses) { window.location.reload(); return; }   // another run now
  const [probe, test, conf, net] = await Promise.all([unpackSet(next.probe), unpackSet(next.test),
    next.confusion ? unpack(next.confusion) : null, unpackNetwork(next.network)]);
  let sprite = thumbs;
  if (next.thumbnails && (!DATA.thumbnails || next.thumbnails.uri !== DATA.thumbnails.uri)) {
    sprite = new Image(); sprite.src = next.thumbnails.uri; await sprite.decode();
  }
  // From here on synchronous, so no frame draws half old, half new data. The first view's box stays the
  // one the page opened with, so a point that did not move stays under the cursor (the newer box is
  // taken by "reset zoom" or a double-click).
  const newest = S.pos >= NE - 1 - 1e-9, at = currentEpochValue();
  liveView = next.view || null;
  if (DATA.view && next.view) next.view = DATA.view;
  DATA = next; setTime(next); LIVE = next.live || LIVE; EPOCHS = next.epochs; NE = EPOCHS.length; FIRST = NE - 1; CN = (next.confusionNames || []).length;
  P = probe; T = test; confusion = conf; NET = net; thumbs = next.thumbnails ? sprite : null;
  if (S.hover && S.hover.i >= (S.hover.split === "test" ? (T ? T.n : 0) : (P ? P.n : 0))) S.hover = null;
  S.pos = newest && !S.playing ? NE - 1 : positionOfEpoch(at);
  $("slider").max = String(Math.max(0, NE - 1));
  $("slider").value = String(S.pos);
  $("notes").textContent = "";
  fillText();
  // New canvases for the curves: buildCharts adds its click handler to the canvas it is given.
  for (const id of ["curve-accuracy", "curve-loss", "curve-quality"]) { const c = $(id); c.replaceWith(c.cloneNode(false)); }
  buildCharts();
  resizeAll();
  drawAll();
  if (S.hover) showTooltip();
  liveUpdates++;
}

function liveState(runs) {
  const byPath = new Map(runs.map((r) => [r.path, r]));
  const mine = LIVE.runs.map((p) => byPath.get(p));
  const token = mine.map((r) => (r ? String(r.version) : "gone")).join(",");
  const words = mine.map((r, k) => {
    // (a run gone from the list: its name as the comparison shows it, control characters escaped by the server)
    const who = LIVE.runs.length > 1 ? `${r ? r.name : DATA.compare.runs[k]}: ` : "";
    if (!r) return `${who}no longer in the folder`;
    if (r.error) return `${who}${r.error}`;
    return who + (r.status || "");
  });
  return { token, text: words.join(" · ") };
}

async function livePoll() {
  if (liveBusy) return;
  liveBusy = true;
  try {
    const res = await fetch("/runs.json", { cache: "no-store" });
    if (!res.ok) throw new Error(`the server answered ${res.status}`);
    const state = liveState((await res.json()).runs);
    liveStatus.textContent = visible(`live · ${state.text}`);
    if (state.token !== LIVE.token) {
      const got = await fetch(LIVE.payload, { cache: "no-store" });
      if (got.status === 200) await replaceData(await got.json());
    }
  } catch (err) {
    liveStatus.textContent = `live updates paused (${err.message || err}); retrying`;
  } finally {
    liveBusy = false;
  }
}

let liveView = null;   // the newest data's first-view box, taken when the user resets the view
function takeLiveView() { if (liveView) { DATA.view = liveView; liveView = null; S.dirty = true; } }

if (LIVE) {
  $("reset-view").addEventListener("click", takeLiveView);
  map.addEventListener("dblclick", takeLiveView);
  ready.then(() => { livePoll(); window.setInterval(livePoll, LIVE.poll || 1000); });
}
