"""The text demo: the shipped reviews, the tokenizer made from them, and the demo end to end."""

from __future__ import annotations

import re
from importlib.resources import files

import numpy as np
import pytest

from epochscope.datasets import REVIEW_CLASSES, REVIEWS_FILE, load_dataset, load_reviews

# The grammar's words (scripts/make_reviews.py): praise, and criticism.
GOOD = {"great", "excellent", "lovely", "superb", "wonderful", "solid", "pleasant", "good", "fantastic", "nice"}
BAD = {"awful", "terrible", "poor", "dull", "disappointing", "bad", "weak", "horrible", "mediocre", "annoying"}


def polarities(text: str) -> list[bool]:
    """Per clause ("the <aspect> <verb> [not] ... <adjective>"), whether it praises."""
    out = []
    for clause in re.findall(r"the \w+ (?:is|was|seemed|felt) (?:not )?(?:(?:really|very|quite|truly) )?\w+", text):
        words = clause.split()
        adjective = words[-1]
        assert adjective in GOOD | BAD, clause
        out.append(adjective in GOOD and "not" not in words)
    return out


def test_the_shipped_reviews_state_their_licence_and_their_labels_are_right():
    head = files("epochscope").joinpath(REVIEWS_FILE).read_text(encoding="utf-8").splitlines()[:3]
    assert any("Licence: CC0 1.0" in line for line in head)
    texts, labels = load_reviews()
    assert texts.shape == (3000,) and len(set(texts)) == 3000
    assert np.bincount(labels).tolist() == [1000, 1000, 1000]
    for text, label in zip(texts, labels):
        p = polarities(text)
        expected = "positive" if all(p) else "negative" if not any(p) else "mixed"
        assert REVIEW_CLASSES[label] == expected, text


def test_text_dataset_is_split_reproducibly():
    d = load_dataset("text")
    assert d.is_text and not d.is_image and d.class_names == REVIEW_CLASSES
    assert d.x_train.shape == (2400,) and d.x_test.shape == (600,)
    assert np.array_equal(d.y_test, load_dataset("text").y_test)
    assert not set(d.x_train) & set(d.x_test)


def test_word_tokenizer_puts_cls_first_and_pads_with_zeros():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from epochscope.demo import tiny_bert, word_tokenizer

    tok = word_tokenizer(["The food was great", "the plot, honestly, was dull"])
    enc = tok(["the food was great", "the plot was Dull!"], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert ids[:, 0].tolist() == [2, 2]  # [CLS]
    assert tok.convert_ids_to_tokens(ids[1].tolist()) == ["[CLS]", "the", "plot", "was", "dull", "[UNK]"]
    assert ids[0, -1] == 0 and mask[0].tolist() == [1, 1, 1, 1, 1, 0]
    model = tiny_bert(len(tok), REVIEW_CLASSES, 16)
    assert model.config.id2label[2] == "positive" and model(**enc).logits.shape == (2, 3)


@pytest.mark.slow
def test_text_demo_records_the_cls_layer_and_the_texts(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from epochscope import open_run
    from epochscope.cli import main

    out = tmp_path / "demo"
    assert main(["-q", "demo", "--dataset", "text", "--epochs", "1", "--probe-size", "300", "--out", str(out),
                 "--no-pictures"]) == 0
    run = open_run(out / "run")
    assert run.epochs == [0, 1] and run.framework == "transformers"
    assert run.layers == ["bert.encoder.layer.1", "bert.pooler"]
    assert run.layer_info("bert.encoder.layer.1").reduction["tokens"] == "first"
    assert len(run.probe_texts) == 300 and len(run.test_texts) == 600
    # The stored texts are the examples' own: each text's label is the one its words give.
    for text, label in zip(run.probe_texts, run.labels):
        p = polarities(text)
        assert run.class_names[label] == ("positive" if all(p) else "negative" if not any(p) else "mixed")
    assert {"loss", "val_loss", "val_accuracy"} <= set(run.epoch_metrics(1))
