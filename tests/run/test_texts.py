"""The examples' texts in a run: written bounded, read back through the checked reader, checked."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from epochscope import RunError, check_run, open_run
from epochscope.run import RunWriter
from epochscope.run import texts as run_texts
from epochscope.run.texts import ELLIPSIS, MAX_TEXT_CHARS, bound_texts, check_texts

MARKUP = "<img src=x onerror=alert(1)> & </script>"


def write_run(path, texts, test_texts=None, n_test=0):
    labels = np.arange(len(texts)) % 2
    test_labels = np.arange(n_test) % 2 if n_test else None
    with RunWriter.open(path, framework="t", labels=labels, class_names=["a", "b"], test_labels=test_labels,
                        probe_texts=texts, test_texts=test_texts) as w:
        w.declare_layer("h", (2,), 2, None)
        with w.epoch(0) as ep:
            ep.set_activations("h", np.zeros((len(texts), 2)))
            if n_test:
                ep.set_activations("h", np.zeros((n_test, 2)), split="test")
    return path


def test_texts_round_trip_as_given(tmp_path):
    texts = ["first", MARKUP, "naïve café ☕ 𝄞", "line\nbreak\ttab"]
    run = open_run(write_run(tmp_path / "run", texts, ["t0", "t1", "t2"], n_test=3))
    assert run.probe_texts == texts and run.test_texts == ["t0", "t1", "t2"]
    assert run.manifest.has_probe_texts and run.manifest.has_test_texts
    assert check_run(run).ok


def test_a_run_without_texts_has_none(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]):
        pass
    run = open_run(path)
    assert run.probe_texts is None and run.test_texts is None
    assert not (path / "probe" / "texts.json").exists()


def test_long_texts_are_cut_and_say_so(tmp_path):
    long = "x" * (MAX_TEXT_CHARS + 50)
    run = open_run(write_run(tmp_path / "run", [long, "short"]))
    stored = run.probe_texts
    assert len(stored[0]) == MAX_TEXT_CHARS and stored[0].endswith(ELLIPSIS) and stored[0][:-1] == long[:MAX_TEXT_CHARS - 1]
    assert stored[1] == "short"


def test_the_total_is_bounded(monkeypatch):
    monkeypatch.setattr(run_texts, "MAX_TEXTS_BYTES", 4000)
    stored, cut = bound_texts(["y" * 900] * 10)
    assert run_texts.texts_size(stored) <= 4000 and cut == 10
    assert len({len(t) for t in stored}) == 1  # every text cut alike


def test_lone_surrogates_become_replacement_characters(tmp_path):
    run = open_run(write_run(tmp_path / "run", ["ok", "bad \ud800 half"]))
    assert run.probe_texts[1] == "bad \ufffd half"
    json.loads((tmp_path / "run" / "probe" / "texts.json").read_bytes().decode("utf-8"))


@pytest.mark.parametrize("texts,error,message", [
    ("one string", TypeError, r"expected a list of strings, one per example, got str"),
    (["a"], ValueError, r"expected one text per example \(2\), got 1"),
    (["a", b"bytes"], TypeError, r"probe_texts\[1\]: expected a string, got bytes"),
    (["a", 3], TypeError, r"probe_texts\[1\]: expected a string, got int"),
])
def test_bad_texts_are_refused_before_anything_is_written(tmp_path, texts, error, message):
    with pytest.raises(error, match=message):
        RunWriter.open(tmp_path / "run", framework="t", labels=[0, 1], class_names=["a", "b"], probe_texts=texts)
    assert not (tmp_path / "run").exists()


def test_numpy_string_arrays_are_texts():
    assert check_texts(np.array(["a", "b"]), 2) == ["a", "b"]


# ---------------------------------------------------------------- damaged texts: the reader refuses, the checker names the file


def damaged(tmp_path, content: bytes):
    path = write_run(tmp_path / "run", ["a", "b"])
    (path / "probe" / "texts.json").write_bytes(content)
    return path


@pytest.mark.parametrize("content,message", [
    (b'["a"]', r"1 texts, expected one per example \(2\)"),
    (b'{"a": 1}', r"expected a JSON list of texts, got dict"),
    (b'["a", 7]', r"text 1 is int, not a string"),
    (json.dumps(["a", "z" * (MAX_TEXT_CHARS + 1)]).encode(), r"text 1 holds 1001 characters, more than the 1000"),
    (b'["a", "\xff\xfe"]', r"unreadable JSON"),
    (b'["a", ', r"unreadable JSON"),
])
def test_damaged_texts(tmp_path, content, message):
    path = damaged(tmp_path, content)
    with pytest.raises(RunError, match=message):
        _ = open_run(path).probe_texts
    report = check_run(path)
    assert [p.path for p in report.problems] == ["probe/texts.json"], str(report)
    assert re.search(message, report.problems[0].message)


def test_oversized_texts_are_refused_unread(tmp_path, monkeypatch):
    import epochscope.checking.texts as checking_texts
    import epochscope.run.reader as reader

    path = damaged(tmp_path, json.dumps(["a", "b" * 500]).encode())
    monkeypatch.setattr(reader, "MAX_TEXTS_BYTES", 100)
    monkeypatch.setattr(checking_texts, "MAX_TEXTS_BYTES", 100)
    with pytest.raises(RunError, match="refused unread"):
        _ = open_run(path).probe_texts
    assert "refused unread" in check_run(path).problems[0].message


def test_missing_texts_are_a_problem_and_repair_keeps_the_run(tmp_path):
    path = damaged(tmp_path, b"")
    os.unlink(path / "probe" / "texts.json")
    report = check_run(path, repair=True)
    assert [p.path for p in report.problems] == ["probe/texts.json"] and "missing" in report.problems[0].message
    assert open_run(path).epochs == [0]


def test_a_link_in_place_of_the_texts_is_reported_not_followed(tmp_path):
    path = damaged(tmp_path, b"")
    target = tmp_path / "elsewhere.json"
    target.write_text('["a", "b"]')
    os.unlink(path / "probe" / "texts.json")
    os.symlink(target, path / "probe" / "texts.json")
    with pytest.raises(RunError, match="link"):
        _ = open_run(path).probe_texts
    problems = check_run(path).problems
    assert [p.path for p in problems] == ["probe/texts.json"] and "a link" in problems[0].message


def test_texts_the_manifest_does_not_name_are_a_warning(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]):
        pass
    (path / "probe" / "texts.json").write_text('["a", "b"]')
    report = check_run(path)
    assert report.ok and [w.path for w in report.warnings] == ["probe/texts.json"]
    assert open_run(path).probe_texts is None
