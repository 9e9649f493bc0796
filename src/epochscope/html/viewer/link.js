// Linked epoch cursors (runs side by side): this viewer sits in a frame of a page that shows several runs.
// A cursor moved here (slider, play, keys, a click on a curve) is posted to the parent page, which passes
// it on to the other frames; a cursor received from there moves this one to the same epoch number (the
// nearest this run holds, interpolated between its epochs) and is not posted back.
const LINKED = window.parent !== window;
let linkSent = null;

window.addEventListener("message", (ev) => {
  if (ev.source !== window.parent || !ev.data || ev.data.type !== "epochscope-cursor" || !S.ready) return;
  const v = Number(ev.data.epoch);
  if (!Number.isFinite(v)) return;
  if (S.playing) pause();
  setPos(positionOfEpoch(v));
  linkSent = currentEpochValue();
});

function linkTick() {
  if (S.ready) {
    const v = currentEpochValue();
    if (v !== linkSent) { linkSent = v; window.parent.postMessage({ type: "epochscope-cursor", epoch: v }, "*"); }
  }
  requestAnimationFrame(linkTick);
}
if (LINKED) ready.then(() => { linkSent = currentEpochValue(); requestAnimationFrame(linkTick); });
