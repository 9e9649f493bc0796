"""The manifest: what a run holds, refused when edited into something unsafe or unreadable."""

import json

import pytest

from epochscope import RunError, open_run
from epochscope.run import MANIFEST_FILE, SCHEMA_VERSION, LayerInfo, Manifest, layer_key


def test_manifest_round_trips_through_json():
    info = LayerInfo(name="conv", key=layer_key("conv"), output_shape=(8, 4, 4), width=64,
                     reduction={"method": "project", "from": 128, "to": 64, "seed": 0})
    m = Manifest(framework="t", probe_size=3, class_names=("a", "b"), test_size=2, layers=(info,),
                 input_shape=(1, 4, 4), has_probe_inputs=True, created="2024-01-01T00:00:00")
    back = Manifest.from_json(json.loads(json.dumps(m.to_json())))
    # A run recorded once an epoch keeps schema 1 (an older epochscope still opens it).
    assert back == m and back.schema_version == 1 < SCHEMA_VERSION and back.layer("conv") == info


def test_edited_manifest_key_is_refused(synthetic_run):
    manifest = json.loads((synthetic_run / MANIFEST_FILE).read_text())
    manifest["layers"][0]["key"] = "../../escape"
    (synthetic_run / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="not a safe file name"):
        open_run(synthetic_run)


def test_deeply_nested_or_infinite_manifest_values_are_run_errors(synthetic_run):
    manifest = synthetic_run / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text.replace('"probe_size": 120', '"probe_size": Infinity'))
    with pytest.raises(RunError, match="manifest.json: malformed manifest"):
        open_run(synthetic_run)
    manifest.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunError, match="manifest.json: unreadable JSON"):
        open_run(synthetic_run)
