// Start: the page's texts, then decode the data, build the panels and begin the animation loop.
function fillText() {
  const info = DATA.info;
  $("title").textContent = `${DATA.title} — ${info.layer}`;
  document.title = `epochscope: ${DATA.title} — ${info.layer}`;
  $("subtitle").textContent = `${info.method} map of layer ${info.layer} · ${info.shownPoints.toLocaleString()} of ` +
    `${info.probeSize.toLocaleString()} probe points${T ? `, ${T.n.toLocaleString()} test points` : ""} · ` +
    `epochs ${EPOCHS[0]}–${EPOCHS[NE - 1]} · ${info.framework}${info.created ? " · " + info.created : ""}`;
  const notes = [];
  const skipped = Object.entries(DATA.skipped || {});
  if (skipped.length) notes.push(`epochs without a map: ${skipped.map(([e, why]) => `${e} (${why})`).join("; ")}`);
  const split = DATA.confusionSplit || "probe";
  $("confusion-caption").textContent = `Confusion matrix (${split} set)`;
  if (info.shownPoints < info.probeSize) notes.push(`showing a random ${info.shownPoints.toLocaleString()} of ${info.probeSize.toLocaleString()} probe points; the confusion matrix counts every ${split} example`);
  if (!DATA.thumbnails && !P.texts) notes.push("no image inputs were recorded, so hovering shows no thumbnail");
  const ul = $("notes");
  for (const n of notes) { const li = document.createElement("li"); li.textContent = n; ul.append(li); }
  const N = DATA.network;
  if (!N || !N.available) $("network").hidden = true;
  $("network-note").textContent = (N && N.note) || "no weights of a dense chain were recorded, so the network is not drawn";
}

async function start() {
  [P, T, confusion] = await Promise.all([unpackSet(DATA.probe), unpackSet(DATA.test), unpack(DATA.confusion), loadNetwork()]);
  if (DATA.thumbnails) {
    thumbs = new Image();
    thumbs.src = DATA.thumbnails.uri;
    await thumbs.decode();
  }
  fillText();
  buildCharts();
  setupControls();
  resizeAll();
  $("loading").hidden = true;
  drawMap(); // draw once synchronously so the hook sees positions right away
  for (const ch of charts) drawChart(ch);
  updateLabels();
  requestAnimationFrame(tick);
}

const ready = start();
ready.catch((err) => { $("loading").textContent = `could not read the report's data: ${err}`; throw err; });
