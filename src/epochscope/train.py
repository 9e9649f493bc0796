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


def _float_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating dtype of the model's parameters (float32 when it has none)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _tensors(data: tuple[Any, Any], float_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs as given (integer token ids stay integers), floating ones in the model's dtype; labels as int64."""
    x, y = data
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    x = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if x.is_floating_point():
        x = x.to(float_dtype)
    return x, torch.as_tensor(np.asarray(y), dtype=torch.long)


def evaluate(model: torch.nn.Module, data: tuple[Any, Any], *, batch_size: int = 500,
             device: torch.device | None = None) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``data`` (eval mode, no gradients).

    Floating inputs are given in the model's floating dtype; integer inputs (token ids) as they are.
    """
    x, y = _tensors(data, _float_dtype(model))
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
    initial_epoch: int | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    show_progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train a classifier with cross-entropy, recording every epoch with ``recorder``.

    ``initial_epoch`` is the number of epochs ``model`` has already been trained (default: 0,
    or the last epoch of the run the recorder resumed, i.e. the model is the one that run
    ends with). The model as it is now is recorded as that epoch unless the run holds it
    (epoch 0: the untrained model), then one record after each epoch, numbered from
    ``initial_epoch + 1``, with ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` and the
    epoch's ``train_seconds`` (with ``every_n_epochs``: every N-th epoch, and the last one
    trained when it ends, ``record(..., last=True)``). After reloading an earlier checkpoint,
    pass its epoch: the recorder refuses epochs its run holds (or replaces them,
    ``replace_epochs=True``).
    Floating inputs are given in the model's floating dtype, integer ones (token ids) as
    they are. Returns the metrics rows.

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
    x, y = _tensors(train, _float_dtype(model))
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []

    def finish(epoch: int, row: dict[str, Any]) -> None:
        if val is not None:
            row["val_loss"], row["val_accuracy"] = evaluate(model, val, device=device)
        if recorder is not None:
            # The last epoch is recorded now whatever every_n_epochs says: left to rec.close(), it would be
            # missing from the run until then, and lost if the model changed first (best weights loaded...).
            recorder.record(epoch, metrics=row, last=epoch == initial_epoch + epochs)
        history.append({"epoch": epoch, **row})
        if on_epoch is not None:
            on_epoch(history[-1])

    held = list(getattr(recorder, "epochs", [])) if recorder is not None else []
    if initial_epoch is None:
        initial_epoch = held[-1] if held else 0
    elif initial_epoch < 0:
        raise ValueError(f"initial_epoch: expected the number of epochs already trained (>= 0), got {initial_epoch}")
    clash = [e for e in range(initial_epoch + 1, initial_epoch + 1 + epochs) if e in held]
    if clash and not getattr(getattr(recorder, "settings", None), "replace_epochs", False):
        session = getattr(recorder, "session", None)  # said before any training, not after an epoch of it
        raise ValueError(session.already_recorded(clash[0]) if session is not None else
                         f"epoch {clash[0]} is already recorded; pass initial_epoch={held[-1]} to continue the run")
    if initial_epoch not in held:
        loss0, acc0 = evaluate(model, (x, y), device=device)
        finish(initial_epoch, {"loss": loss0, "accuracy": acc0})
    first = initial_epoch + 1
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
