// Start: the first view is drawn while this script runs (from the payload's unpacked "first" block: the
// last epoch's positions), so a screenshot, a printout or a static export shows the map without waiting on
// a timer; then the packed data are decoded and the viewer becomes interactive.
// Every text from the run goes through visible() (text.js): shown with its control characters escaped.
function fillText() {
  const info = DATA.info;
  $("title").textContent = visible(DATA.title);
  document.title = `${visible(DATA.title)} · epochscope report`;
  const parts = [];
  if (HAS_MAP) {
    parts.push(`${info.method} map of layer ${info.layer}`,
      `${info.shownPoints.toLocaleString()} of ${info.probeSize.toLocaleString()} probe points` +
      (DATA.test ? `, ${DATA.test.count.toLocaleString()} test points` : ""));
  }
  parts.push(TIME ? `${epochName(EPOCHS[0])} – ${epochName(EPOCHS[NE - 1])}` : `epochs ${EPOCHS[0]}–${EPOCHS[NE - 1]}`, info.framework);
  if (info.created) parts.push(info.created);
  $("subtitle").textContent = visible(`${DATA.runName} · ${parts.join(" · ")}`);
  const notes = [];
  if (DATA.skippedNote) notes.push(DATA.skippedNote);
  const skipped = Object.entries(DATA.skipped || {});
  if (skipped.length) notes.push(`epochs without a map: ${skipped.map(([e, why]) => `${e} (${why})`).join("; ")}`);
  const split = DATA.confusionSplit || "probe";
  $("confusion-caption").textContent = DATA.confusion ? `Confusion matrix (${split} set)` : "Confusion matrix";
  if (HAS_MAP && info.shownPoints < info.probeSize) notes.push(`showing a random ${info.shownPoints.toLocaleString()} of ${info.probeSize.toLocaleString()} probe points; the confusion matrix counts every ${split} example`);
  if (HAS_MAP && !DATA.thumbnails && !DATA.probe.texts) notes.push("no image inputs were recorded, so hovering shows no thumbnail");
  if (HAS_MAP && DATA.test) notes.push("test points (when shown) are rings in their class colour, placed on the map after it was fitted; hovering one says when its place is uncertain");
  const ul = $("notes");
  for (const n of notes) { const li = document.createElement("li"); li.textContent = visible(n); ul.append(li); }
  if (!HAS_MAP) { $("map-wrap").hidden = true; $("no-map").hidden = false; $("no-map").textContent = visible(DATA.skippedNote || "no map"); }
  const N = DATA.network;
  if (!N || !N.available) $("network").hidden = true;
  $("network-note").textContent = visible((N && N.note) || "no weights of a dense chain were recorded, so the network is not drawn");
}

function drawAll() {
  if (HAS_MAP) drawMap();
  for (const ch of charts) drawChart(ch);
  updateLabels();
}

function firstView() {
  fillText();
  buildCharts();
  if (HAS_MAP) {
    P = firstSet(DATA.first.probe, DATA.probe);
    T = DATA.first.test ? firstSet(DATA.first.test, DATA.test) : null;
  }
  setupControls();
  resizeAll();
  $("slider").value = String(S.pos);
  drawAll();
  $("loading").hidden = true;
}

async function start() {
  const [probe, test, conf] = await Promise.all([unpackSet(DATA.probe), unpackSet(DATA.test),
    DATA.confusion ? unpack(DATA.confusion) : null, loadNetwork()]);
  if (DATA.thumbnails) {
    thumbs = new Image();
    thumbs.src = DATA.thumbnails.uri;
    await thumbs.decode();
  }
  P = probe; T = test; confusion = conf;
  S.ready = true;
  if (HAS_MAP) resizeMap();
  S.lastShownEpoch = -1;
  drawAll(); // once synchronously, so the hook sees positions right away
  requestAnimationFrame(tick);
}

let ready;
try {
  firstView();
  ready = start();
} catch (err) {
  ready = Promise.reject(err);
}
ready.catch((err) => { $("loading").hidden = false; $("loading").textContent = `could not read the report's data: ${err}`; throw err; });
