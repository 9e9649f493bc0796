"""Maps in a notebook: the summary, the quality table and the last frame's points, all escaped."""

from __future__ import annotations

from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np

from epochscope.maps.inline import PREVIEW_POINTS, PREVIEW_SIZE, TABLE_ROWS, maps_html


def fake_maps(n_epochs=3, n=50, layer="hidden", quality=None, skipped=None, test=0):
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(n_epochs, n, 2)).astype(np.float32)
    return SimpleNamespace(layer=layer, method="umap", epochs=list(range(n_epochs)), coords=coords,
                           test_coords=np.zeros((n_epochs, test, 2)) if test else None,
                           quality=quality if quality is not None else
                           {"trustworthiness": np.linspace(0.8, 0.95, n_epochs), "motion": np.r_[np.nan, np.ones(n_epochs - 1)]},
                           bounds=(-4.0, 4.0, -4.0, 4.0), skipped=skipped or {})


class Text(HTMLParser):
    def __init__(self, markup):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_points_land_where_the_last_frame_puts_them():
    maps = fake_maps()
    maps.coords[-1, :3] = [[-4, -4], [4, 4], [0, 0]]  # the corners of the bounds and the centre
    circles = [a for t, a in Text(maps_html(maps)).tags if t == "circle"]
    assert len(circles) == 50
    pad = 6.0
    xy = [(float(c["cx"]), float(c["cy"])) for c in circles[:3]]
    assert xy == [(pad, PREVIEW_SIZE - pad), (PREVIEW_SIZE - pad, pad), (PREVIEW_SIZE / 2, PREVIEW_SIZE / 2)]  # y points up


def test_many_points_are_thinned_and_nan_points_left_out():
    maps = fake_maps(n=PREVIEW_POINTS * 3)
    assert maps_html(maps).count("<circle") == PREVIEW_POINTS
    small = fake_maps(n=10)
    small.coords[-1, 4] = np.nan
    assert maps_html(small).count("<circle") == 9


def test_the_table_holds_every_quality_figure_and_shortens_long_runs():
    html = maps_html(fake_maps(quality={"trustworthiness": np.array([0.91, 0.92, 0.93]),
                                        "separation": np.array([0.1, np.nan, 0.3])}))
    text = " ".join(Text(html).text)
    assert "trust" in text and "separation" in text and "0.920" in text and "–" in text  # NaN shows as a dash
    long = maps_html(fake_maps(n_epochs=40))
    assert long.count("<tr>") == 1 + TABLE_ROWS + 1 and "28 more epochs" in long


def test_names_from_the_run_are_escaped():
    html = maps_html(fake_maps(layer='<img src=x onerror="alert(1)">', skipped={5: "<script>x</script>"}, test=7))
    parsed = Text(html)
    assert not {"img", "script"} & {t for t, _ in parsed.tags}
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)  # no event handler
    text = "".join(parsed.text)
    assert '<img src=x onerror="alert(1)">' in text and "epoch 5: <script>x</script>" in text  # shown as text
    assert "7 test points" in text
