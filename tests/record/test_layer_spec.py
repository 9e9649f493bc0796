"""Names in layers=[...]: a layer as named, or one call of it, or one part of its output."""

import pytest

from epochscope.record.layer_spec import LayerSpec, base_name, parse_layer_spec

NAMES = {"lstm", "block.relu", "odd@name", "enc"}


def exists(name):
    return name in NAMES


@pytest.mark.parametrize("given,expected", [
    ("lstm", LayerSpec("lstm", "lstm")),
    ("block.relu@2", LayerSpec("block.relu@2", "block.relu", 2)),
    ("lstm[1][0]", LayerSpec("lstm[1][0]", "lstm", None, (1, 0))),
    ("enc[last_hidden_state]", LayerSpec("enc[last_hidden_state]", "enc", None, ("last_hidden_state",))),
    ("enc['logits']", LayerSpec("enc['logits']", "enc", None, ("logits",))),
    ("lstm@3[0]", LayerSpec("lstm@3[0]", "lstm", 3, (0,))),
    ("odd@name", LayerSpec("odd@name", "odd@name")),  # an exact name wins over the suffixes
])
def test_specs(given, expected):
    assert parse_layer_spec(given, exists) == expected


def test_unknown_names_and_bad_calls():
    assert parse_layer_spec("hiden", exists) is None and parse_layer_spec("hiden@2", exists) is None
    assert base_name("hiden@2[0]") == "hiden"
    with pytest.raises(ValueError, match=r"'lstm@0' asks for call 0; calls are counted from 1"):
        parse_layer_spec("lstm@0", exists)
