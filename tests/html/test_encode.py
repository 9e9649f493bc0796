import base64
import json
import zlib

import numpy as np
import pytest

from epochscope.html.encode import COORD_MISSING, pack_array, quantise_coords, script_json


def unpack(spec):
    """Python mirror of the viewer's decoder (viewer.js unpack)."""
    raw = np.frombuffer(zlib.decompress(base64.b64decode(spec["b64"])), dtype=np.uint8)
    dtype = np.dtype(spec["dtype"]).newbyteorder("<")
    if dtype.itemsize > 1:
        raw = raw.reshape(dtype.itemsize, -1).T.copy()
    arr = raw.view(dtype).reshape(spec["shape"]).copy()
    if spec["delta"]:
        arr = np.cumsum(arr, axis=0, dtype=arr.dtype)
    return arr


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "int32", "float32"])
def test_pack_round_trips(dtype):
    a = (np.random.default_rng(0).random((5, 7, 2)) * 200).astype(dtype)
    assert np.array_equal(unpack(pack_array(a)), a)


def test_delta_round_trips_with_wrapping():
    a = np.array([[0, 65534], [65534, 3], [1, 1]], dtype=np.uint16)
    spec = pack_array(a, delta_axis0=True)
    assert spec["delta"] and np.array_equal(unpack(spec), a)


def test_delta_and_shuffle_make_slow_motion_small():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(50, 2000, 2)) * 30, axis=0) + 30000
    q = np.clip(walk, 0, 65534).astype(np.uint16)
    plain = len(base64.b64encode(zlib.compress(q.tobytes())))
    assert len(pack_array(q, delta_axis0=True)["b64"]) < 0.8 * plain


def test_pack_rejects_other_dtypes():
    with pytest.raises(TypeError, match="dtype"):
        pack_array(np.zeros(3, dtype=np.float64))
    with pytest.raises(TypeError, match="unsigned"):
        pack_array(np.zeros(3, dtype=np.float32), delta_axis0=True)


def test_quantise_spans_bounds_and_marks_nan():
    coords = np.array([[0.0, -1.0], [10.0, 1.0], [5.0, 0.0], [np.nan, 0.0]])
    q = quantise_coords(coords, (0.0, 10.0, -1.0, 1.0))
    assert q.dtype == np.uint16
    assert q[0].tolist() == [0, 0] and q[1].tolist() == [65534, 65534]
    assert q[2].tolist() == [32767, 32767]
    assert q[3].tolist() == [COORD_MISSING, COORD_MISSING]
    with pytest.raises(ValueError, match="finite"):
        quantise_coords(coords, (0.0, np.inf, 0.0, 1.0))


def test_script_json_cannot_end_the_script_element():
    nasty = {"name": "</script><script>alert(1)</script><!--", "sep": "a\u2028b\u2029c", "amp": "&", "nan": float("nan")}
    text = script_json(nasty)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    back = json.loads(text)
    assert back["name"] == nasty["name"] and back["sep"] == nasty["sep"] and back["nan"] is None


def test_script_json_converts_numpy():
    assert json.loads(script_json({"a": np.float32(1.5), "b": np.arange(3)})) == {"a": 1.5, "b": [0, 1, 2]}
