"""Record a Lightning model from inside ``Trainer.fit``: one callback, nothing else to change.

Users import it as ``from epochscope.lightning import Recorder``. A LightningModule is a
``torch.nn.Module``, so the capture itself is the PyTorch recorder's (forward hooks on the
plain module, eval mode, no gradients); this adapter only decides when to record, which
metrics to pass and which process writes.

Multi-process training (DDP and friends): every rank validates the arguments and reads the
metrics (reading ``trainer.callback_metrics`` may all-reduce metrics logged with
``sync_dist=True``, a collective that every rank must join), but only global rank 0 runs
the capture and writes the run. The capture calls the plain LightningModule, never the
DDP wrapper, under ``no_grad``, so it starts no collective operation the other ranks would
have to answer; they simply wait for rank 0 at the next collective of training.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._optional import require
from ..run import open_run
from .core import check_pair
from .labels import encode_labels
from .metric_names import normalise_metrics
from .torch import Recorder as TorchRecorder
from .torch import find_modules, find_weights

pl = require("lightning.pytorch", extra="lightning", purpose="recording Lightning models")

__all__ = ["Recorder"]

log = logging.getLogger("epochscope")

_VALIDATION_PREFIXES = ("val_", "valid_", "validation_", "val/", "valid/", "validation/")


class _LightningCapture(TorchRecorder):
    """The PyTorch recorder, naming Lightning as the framework in the manifest."""

    framework = "lightning"


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


class Recorder(pl.Callback):
    """A Lightning callback that records chosen layers, predictions, weights and metrics every epoch.

    Epoch 0 (the untrained model) is recorded at ``on_fit_start``; then one epoch at every
    ``on_train_epoch_end``. Lightning runs the end-of-epoch validation *before* that hook
    (the fit loop validates on the epoch's last batch, then calls the train-epoch-end
    hooks), so the validation metrics of the epoch are in ``trainer.callback_metrics``
    when it is recorded, whereas ``on_validation_end`` would also fire for the sanity check
    and for mid-epoch validations. Metrics are recorded under one spelling (``loss``,
    ``accuracy``, ``val_loss``, ``val_accuracy``: ``train_loss``/``val_acc``/``*_epoch`` are
    renamed); in an epoch that ran no validation (``check_val_every_n_epoch > 1``) the
    validation metrics, which would be stale, are left out. A resumed or repeated ``fit``
    appends to the run; epoch 0 is recorded once.

    Under DDP only global rank 0 writes; metrics are rank 0's unless they were logged with
    ``sync_dist=True``.

    Parameters
    ----------
    layers : module names from ``pl_module.named_modules()`` whose outputs are recorded
        (e.g. ``"model.hidden"`` when the network sits in ``self.model``).
    probe : ``(x, y)`` the fixed examples recorded every epoch (tensors or arrays; labels
        as integers, one-hot rows or strings).
    run_dir : folder of the run; created, or resumed (appended to) when it holds one.
    test, class_names, weights, probe_size, batch_size, reduce, max_width, reduced_width,
    keep_inputs, seed, resume : as for :class:`epochscope.torch.Recorder`.

    Example::

        from epochscope.lightning import Recorder

        trainer = L.Trainer(max_epochs=10, callbacks=[
            Recorder(layers=["model.hidden"], probe=(x_probe, y_probe), run_dir="runs/mnist")])
        trainer.fit(module, train_loader, val_loader)
    """

    def __init__(
        self,
        layers: Sequence[str],
        probe: tuple[Any, Any],
        run_dir: str,
        test: tuple[Any, Any] | None = None,
        class_names: Sequence[str] | None = None,
        weights: str | Sequence[str] | None = "auto",
        probe_size: int | None = None,
        batch_size: int = 256,
        reduce: str = "project",
        max_width: int = 2048,
        reduced_width: int = 512,
        keep_inputs: bool = True,
        seed: int = 0,
        resume: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(layers, str):
            layers = [layers]
        if not layers:
            raise ValueError("layers must name at least one module to record, e.g. layers=['model.hidden']")
        # Checked on every rank here, so a bad argument stops all processes alike instead of
        # leaving the others waiting for a rank 0 that failed.
        x, y = probe
        check_pair(len(x), len(y), "probe")
        encode_labels(_numpy(y), class_names, what="probe labels")
        if test is not None:
            check_pair(len(test[0]), len(test[1]), "test")
            encode_labels(_numpy(test[1]), class_names, what="test labels")
        self.layers = list(layers)
        self.weights = weights
        self._run_dir = str(run_dir)
        self._settings = dict(
            probe=probe, run_dir=self._run_dir, test=test, class_names=class_names, weights=weights,
            probe_size=probe_size, batch_size=batch_size, reduce=reduce, max_width=max_width,
            reduced_width=reduced_width, keep_inputs=keep_inputs, seed=seed, resume=resume,
        )
        self.recorder: TorchRecorder | None = None  # only ever set on global rank 0
        self._validated = False

    # -- lifetime
    @property
    def run_dir(self) -> str:
        return self._run_dir

    @property
    def run(self):
        """The run opened for reading (see :class:`epochscope.Run`)."""
        return open_run(self._run_dir)

    def close(self) -> None:
        """Release the run (its lock). Done when ``fit`` ends or fails; safe to call twice."""
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    # -- Lightning hooks
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        """Check the layer and weight names on every rank; on rank 0 open the run and record epoch 0 once."""
        find_modules(pl_module, self.layers)
        find_weights(pl_module, self.weights)
        if not trainer.is_global_zero:
            return
        if self.recorder is None or self.recorder.model is not pl_module:
            self.close()
            self.recorder = _LightningCapture(pl_module, self.layers, **self._settings)
            log.info("recording %s into %s from epoch %d (global rank 0 of %d)", self.layers, self._run_dir,
                     self.recorder.next_epoch, trainer.world_size)
        if self.recorder.next_epoch == 0:
            self.recorder.record(0, metrics={"step": trainer.global_step})

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._validated = False

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Record the finished epoch (validation included) as the run's next epoch."""
        metrics = normalise_metrics(trainer.callback_metrics)  # on every rank: may all-reduce
        if not self._validated:
            metrics = {k: v for k, v in metrics.items() if not k.startswith(_VALIDATION_PREFIXES)}
        metrics["step"] = trainer.global_step
        if trainer.is_global_zero and self.recorder is not None:
            self.recorder.record(metrics=metrics)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.close()
