"""A zoo of the models people train, for the PyTorch and Lightning recorders' tests.

Each :class:`ZooCase` builds a small model and its probe, names the layers to record, and
computes, independently of epochscope's hooks (functional ops from the module's parameters,
or the module called on its own), what each recorded layer must store: the layer's output at
that call, batch first, reduced over tokens as the case says. The tests assert that the run
holds those values (to float16 precision) and that its predictions are the model's own arg-max.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N = 24  # probe examples; batch_size 10 in the tests, so batches of 10, 10, 4
T = 7  # tokens per sequence


@dataclass
class ZooCase:
    name: str
    build: Callable[[], nn.Module]
    probe: Callable[[], tuple[Any, np.ndarray]]
    layers: list[str]
    expected: Callable[[nn.Module, Any], dict[str, np.ndarray]]
    options: dict[str, Any] = field(default_factory=dict)
    #: the keys of a token layer's reduction in the manifest, per layer
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)


def call(model: nn.Module, x: Any) -> Any:
    if isinstance(x, dict):
        return model(**{k: torch.as_tensor(v) for k, v in x.items()})
    return model(torch.as_tensor(x))


def prediction(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict) or hasattr(output, "logits"):
        return output["logits"] if isinstance(output, dict) else output.logits
    raise TypeError(type(output))


def model_argmax(model: nn.Module, x: Any) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return prediction(call(model, x)).argmax(-1).numpy()


def labels() -> np.ndarray:
    return np.arange(N) % 3


def reduce_tokens(h: np.ndarray, mask: np.ndarray | None, how: str) -> np.ndarray:
    """(N, T, E) -> (N, E) over the real tokens, written out plainly (no shared code with the core)."""
    rows = []
    for i in range(len(h)):
        real = np.arange(h.shape[1]) if mask is None else np.flatnonzero(mask[i])
        if how == "mean":
            rows.append(h[i, real].mean(axis=0))
        elif how == "first":
            rows.append(h[i, real[0]])
        else:
            rows.append(h[i, real[-1]])
    return np.stack(rows)


# --------------------------------------------------------------------------- ResNet block


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: BatchNorm, ONE in-place ReLU module used twice, residual ``+=``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNetish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = BasicBlock(4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.block(F.relu(self.stem(x)))).flatten(1))


def build_resnet() -> nn.Module:
    torch.manual_seed(0)
    model = ResNetish()
    with torch.no_grad():  # statistics far from (0, 1), so eval mode visibly matters
        for bn in (model.block.bn1, model.block.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return model


def resnet_probe():
    return np.random.default_rng(0).normal(size=(N, 1, 8, 8)).astype(np.float32), labels()


def resnet_expected(model: ResNetish, x) -> dict[str, np.ndarray]:
    b = model.block

    def bn(h, m):
        return F.batch_norm(h, m.running_mean, m.running_var, m.weight, m.bias, training=False, eps=m.eps)

    with torch.no_grad():
        s = F.relu(F.conv2d(torch.as_tensor(x), model.stem.weight, model.stem.bias, padding=1))
        b1 = bn(F.conv2d(s, b.conv1.weight, padding=1), b.bn1)
        r1 = F.relu(b1)
        b2 = bn(F.conv2d(r1, b.conv2.weight, padding=1), b.bn2)
        r2 = F.relu(b2 + s)
    flat = {"block.bn1": b1, "block.relu@1": r1, "block.bn2": b2, "block.relu@2": r2}
    return {k: v.flatten(1).numpy() for k, v in flat.items()}


# --------------------------------------------------------------------------- MLP with an in-place ReLU


def build_mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(OrderedDict(fc=nn.Linear(8, 16), act=nn.ReLU(inplace=True), out=nn.Linear(16, 3)))


def mlp_probe():
    return np.random.default_rng(1).normal(size=(N, 8)).astype(np.float32), labels()


def mlp_expected(model, x) -> dict[str, np.ndarray]:
    w, b = model.fc.weight.detach().numpy().astype(np.float64), model.fc.bias.detach().numpy().astype(np.float64)
    fc = x.astype(np.float64) @ w.T + b
    return {"fc": fc, "act": np.maximum(fc, 0)}


# --------------------------------------------------------------------------- token classifier


class TokenClassifier(nn.Module):
    """nn.Embedding + nn.TransformerEncoder, padded sequences with an attention mask."""

    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.emb = nn.Embedding(50, 16, padding_idx=0)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=batch_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=batch_first)
        self.head = nn.Linear(16, 3)

    def forward(self, input_ids, attention_mask):
        h = self.emb(input_ids)
        pad = attention_mask == 0
        h = self.encoder(h if self.batch_first else h.transpose(0, 1), src_key_padding_mask=pad)
        h = h if self.batch_first else h.transpose(0, 1)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * m).sum(1) / m.sum(1))


def token_probe():
    rng = np.random.default_rng(2)
    lengths = rng.integers(3, T + 1, size=N)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, 50, size=(N, T)) * mask  # padding id 0 after each sequence
    return {"input_ids": ids, "attention_mask": mask}, labels()


def token_expected(how: str):
    def expected(model: TokenClassifier, x) -> dict[str, np.ndarray]:
        ids, mask = torch.as_tensor(x["input_ids"]), torch.as_tensor(x["attention_mask"])
        pad = mask == 0
        model.eval()
        with torch.no_grad():
            h = model.emb(ids)
            seq = h if model.batch_first else h.transpose(0, 1)
            l0 = model.encoder.layers[0](seq, src_key_padding_mask=pad)
            l1 = model.encoder.layers[1](l0, src_key_padding_mask=pad)
            out = model.encoder(seq, src_key_padding_mask=pad)
        first = (lambda t: t) if model.batch_first else (lambda t: t.transpose(0, 1))
        m = mask.numpy()
        return {"emb": reduce_tokens(h.numpy(), m, how), "encoder": reduce_tokens(first(out).numpy(), m, how),
                "encoder.layers.1": reduce_tokens(first(l1).numpy(), m, how)}
    return expected


def build_token(batch_first: bool):
    def build():
        torch.manual_seed(2)
        return TokenClassifier(batch_first)
    return build


# --------------------------------------------------------------------------- LSTM


class LSTMClassifier(nn.Module):
    """A batch-first model around a sequence-first nn.LSTM (PyTorch's default)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        _, (h, _) = self.lstm(x.transpose(0, 1))
        return self.head(h[-1])


def build_lstm() -> nn.Module:
    torch.manual_seed(3)
    return LSTMClassifier()


def lstm_probe():
    return np.random.default_rng(3).normal(size=(N, T, 4)).astype(np.float32), labels()


def lstm_expected(model: LSTMClassifier, x) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out, (h, _) = model.lstm(torch.as_tensor(x).transpose(0, 1))
    return {"lstm": out.numpy().mean(axis=0), "lstm[1][0]": h.transpose(0, 1).reshape(len(x), -1).numpy()}


# --------------------------------------------------------------------------- a model returning a dict


class Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 8)

    def forward(self, x):
        h = self.lin(x)
        return {"hidden": h, "gate": torch.sigmoid(h)}


class DictModel(nn.Module):
    """Returns {"features", "logits"}: the predictions must come from the logits, not the first tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.feat = Features()
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.feat(x)["hidden"])
        return {"features": h, "logits": self.head(h)}


def build_dict() -> nn.Module:
    torch.manual_seed(4)
    return DictModel()


def dict_probe():
    return np.random.default_rng(4).normal(size=(N, 6)).astype(np.float32), labels()


def dict_expected(model: DictModel, x) -> dict[str, np.ndarray]:
    w, b = model.feat.lin.weight.detach().numpy().astype(np.float64), model.feat.lin.bias.detach().numpy()
    h = x.astype(np.float64) @ w.T + b
    return {"feat": h, "feat[gate]": 1 / (1 + np.exp(-h))}


# --------------------------------------------------------------------------- a tiny Hugging Face model


def build_hf() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(5)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=32, num_labels=3, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config)  # random weights, built from the config: no download


def hf_expected(model, x) -> dict[str, np.ndarray]:
    ids, mask = torch.as_tensor(x["input_ids"]), torch.as_tensor(x["attention_mask"])
    model.eval()
    with torch.no_grad():
        out = model.bert(input_ids=ids, attention_mask=mask)
    return {"bert.encoder": reduce_tokens(out.last_hidden_state.numpy(), mask.numpy(), "mean"),
            "bert.pooler": out.pooler_output.numpy()}


def cases() -> list[ZooCase]:
    zoo = [
        ZooCase("resnet-block", build_resnet, resnet_probe, ["block.bn1", "block.relu@1", "block.bn2", "block.relu@2"],
                resnet_expected),
        ZooCase("mlp-inplace-relu", build_mlp, mlp_probe, ["fc", "act"], mlp_expected),
        ZooCase("lstm", build_lstm, lstm_probe, ["lstm", "lstm[1][0]"], lstm_expected,
                tokens={"lstm": {"tokens": "mean", "mask": None}}),
        ZooCase("dict-output", build_dict, dict_probe, ["feat", "feat[gate]"], dict_expected),
        ZooCase("hugging-face-bert", build_hf, token_probe, ["bert.encoder", "bert.pooler"], hf_expected,
                tokens={"bert.encoder": {"tokens": "mean", "mask": "attention_mask"}}),
    ]
    for batch_first in (True, False):
        for how in ("mean", "first", "last"):
            zoo.append(ZooCase(f"tokens-batch_first={batch_first}-{how}", build_token(batch_first), token_probe,
                               ["emb", "encoder", "encoder.layers.1"], token_expected(how), options={"tokens": how},
                               tokens={name: {"tokens": how, "mask": "attention_mask"}
                                       for name in ("emb", "encoder", "encoder.layers.1")}))
    return zoo
