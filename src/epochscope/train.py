"""A small, tested training loop for PyTorch classifiers that records every epoch.

Users with their own loop call ``Recorder.record`` themselves; this loop is what the demo
and the examples use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._optional import require
from ._progress import progress

torch = require("torch", extra="torch", purpose="training")

__all__ = ["fit", "evaluate", "default_device"]

log = logging.getLogger("epochscope")


def default_device() -> torch.device:
    """CUDA when present, else Apple's MPS when present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _tensors(data: tuple[Any, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = data
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    return torch.as_tensor(np.asarray(x), dtype=torch.float32), torch.as_tensor(np.asarray(y), dtype=torch.long)


def evaluate(model: torch.nn.Module, data: tuple[Any, Any], *, batch_size: int = 500,
             device: torch.device | None = None) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``data`` (eval mode, no gradients)."""
    x, y = _tensors(data)
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
                out = model(xb)
                total_loss += torch.nn.functional.cross_entropy(out, yb, reduction="sum").item()
                correct += (out.argmax(1) == yb).sum().item()
    finally:
        model.train(was_training)
    return total_loss / len(x), correct / len(x)


def fit(
    model: torch.nn.Module,
    train: tuple[Any, Any],
    *,
    val: tuple[Any, Any] | None = None,
    epochs: int = 5,
    batch_size: int = 100,
    lr: float = 1e-3,
    optimizer: str = "adam",
    recorder: Any = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    show_progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train a classifier with cross-entropy, recording every epoch with ``recorder``.

    Epoch 0 (the untrained model) is recorded before the first update, then one record
    after each epoch with ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` and the
    epoch's ``train_seconds``. With a recorder that resumed a run, epoch numbers continue
    after its last epoch. Returns the metrics rows.

    Example::

        rec = Recorder(model, ["hidden"], probe=(xp, yp), run_dir="runs/x")
        history = fit(model, (x, y), val=(xv, yv), epochs=10, recorder=rec)
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    torch.manual_seed(seed)
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    x, y = _tensors(train)
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []

    def finish(epoch: int, row: dict[str, Any]) -> None:
        if val is not None:
            row["val_loss"], row["val_accuracy"] = evaluate(model, val, device=device)
        if recorder is not None:
            recorder.record(epoch, metrics=row)
        history.append({"epoch": epoch, **row})
        if on_epoch is not None:
            on_epoch(history[-1])

    first = recorder.next_epoch if recorder is not None else 0
    if first == 0:
        loss0, acc0 = evaluate(model, (x, y), device=device)
        finish(0, {"loss": loss0, "accuracy": acc0})
        first = 1
    bar = progress(range(first, first + epochs), desc="training", enabled=show_progress, total=epochs)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        total_loss, correct = 0.0, 0
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            xb, yb = x[idx].to(device), y[idx].to(device)
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = torch.nn.functional.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        row = {"loss": total_loss / len(x), "accuracy": correct / len(x), "train_seconds": time.perf_counter() - t0}
        finish(epoch, row)
        log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in history[-1].items() if isinstance(v, float)})
    return history
