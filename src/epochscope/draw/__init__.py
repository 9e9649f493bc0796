"""Renderers: pictures drawn from a run's arrays and the 2-D maps they are given.

They never compute maps (:mod:`epochscope.pipeline` embeds and hands the maps over), never
import a framework or a model, and never change the user's matplotlib state (every figure is
drawn off-screen on the library's own canvas, :mod:`.figure`).

- one module per picture, each a Display object (``from_run(...)``, ``plot(ax=None)``, shown
  inline in a notebook): :mod:`.confusion`, :mod:`.curves`, :mod:`.forgetting`,
  :mod:`.quality`, :mod:`.samples`, :mod:`.multiples` (layer x epoch grid), :mod:`.timelapse`
  (time-lapse and one map frame), :mod:`.testmap` (train + test map), :mod:`.network`;
- :mod:`.render_all`: every picture of a run into a folder (``render_maps``);
- shared parts: :mod:`.figure` (own canvas, Display basics, PNG files), :mod:`.animate`
  (GIF/MP4 and palettes), :mod:`.style` (sizes, fonts, markers), :mod:`.mapframe`,
  :mod:`.mapplot` and :mod:`.raster` (fast map frames).
"""
