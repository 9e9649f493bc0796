"""A custom PyTorch text model (nn.Embedding, dict inputs) keeps its examples' texts in the run."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from epochscope import open_run  # noqa: E402
from epochscope.torch import Recorder  # noqa: E402

WORDS = ["<pad>", "good", "bad", "film", "plot", "great", "awful", "the", "was", "a"]


class BagOfEmbeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(WORDS), 8, padding_idx=0)
        self.head = nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask):
        e = self.embed(input_ids)
        m = attention_mask.unsqueeze(-1).float()
        return self.head((e * m).sum(1) / m.sum(1).clamp(min=1))


def encode(texts, width=6):
    ids = np.zeros((len(texts), width), np.int64)
    for i, t in enumerate(texts):
        toks = [WORDS.index(w) for w in t.split()][:width]
        ids[i, :len(toks)] = toks
    return {"input_ids": torch.as_tensor(ids), "attention_mask": torch.as_tensor((ids > 0).astype(np.int64))}


def corpus(n=40, seed=0):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        word = ["bad", "awful"][rng.integers(2)] if y == 0 else ["good", "great"][rng.integers(2)]
        texts.append(" ".join(["the", ["film", "plot"][rng.integers(2)], "was", word][: 2 + rng.integers(3)] + [word]))
        labels.append(y)
    return texts, np.array(labels)


def test_dict_probe_with_texts_keeps_the_texts_of_the_recorded_examples(tmp_path):
    torch.manual_seed(0)
    texts, y = corpus()
    test_texts, yt = corpus(10, seed=1)
    model = BagOfEmbeddings()
    rec = Recorder(model, layers=["embed"], probe=(encode(texts), y), test=(encode(test_texts), yt),
                   texts=texts, test_texts=test_texts, run_dir=tmp_path / "run", probe_size=20, seed=3)
    rec.record(0)
    rec.close()
    run = open_run(tmp_path / "run")
    assert len(run.probe_texts) == 20 and run.test_texts == test_texts
    # The subset's texts belong to its examples: the stored labels agree with the words of each text.
    for text, label in zip(run.probe_texts, run.labels):
        assert (("good" in text) or ("great" in text)) == (run.class_names[label] == "1")
    # And the recorded embedding layer is the mean over each text's real tokens, computed here.
    chosen = [texts.index(t) for t in run.probe_texts]
    ids = encode(texts)["input_ids"][chosen]
    with torch.no_grad():
        e = model.embed(ids)
        m = (ids > 0).unsqueeze(-1).float()
        expected = ((e * m).sum(1) / m.sum(1)).numpy()
    np.testing.assert_allclose(run.activations("embed", 0), expected, atol=2e-3)


def test_texts_of_the_wrong_length_are_refused_before_any_run(tmp_path):
    texts, y = corpus(8)
    with pytest.raises(ValueError, match=r"texts: expected one text per example \(8\), got 7"):
        Recorder(BagOfEmbeddings(), layers=[], probe=(encode(texts), y), texts=texts[:7], run_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="test_texts: given without a test set"):
        Recorder(BagOfEmbeddings(), layers=[], probe=(encode(texts), y), test_texts=texts, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
