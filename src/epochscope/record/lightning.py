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
have to answer; they simply wait for rank 0 at the next collective of training. The one
collective the callback adds is at each epoch start: rank 0 broadcasts whether the run
already holds the coming epoch, so that every rank stops alike when it does.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .._optional import require, require_all

# Before the PyTorch recorder is imported: without torch it would name the torch extra, and the
# lightning extra is the one install that brings both.
require_all(("torch", "lightning"), extra="lightning", purpose="recording Lightning models")

from ..metric_names import metric_name  # noqa: E402
from ..run import open_run  # noqa: E402
from .schedule import LeftOut, batches_part, fractional_epoch, metrics_now  # noqa: E402
from .settings import RecorderCallback, RecordSettings  # noqa: E402
from .torch import Recorder as TorchRecorder  # noqa: E402
from .torch import _weights_fingerprint, find_modules, find_weights, select_torch_examples  # noqa: E402

pl = require("lightning.pytorch", extra="lightning", purpose="recording Lightning models")

__all__ = ["Recorder"]

log = logging.getLogger("epochscope")

# Validation metrics' names once normalised (val/acc -> val_accuracy, validation_f1 stays).
_VALIDATION_PREFIXES = ("val_", "valid_", "validation_")


def _last_epoch(trainer: Any) -> bool:
    """Whether the epoch now ending is known to be the last whole one of this ``fit``: ``max_epochs``
    or ``max_steps`` reached, ``max_steps`` falling inside the next epoch (which is then cut short, and
    not recorded), or ``trainer.should_stop`` set (honoured once ``min_epochs``/``min_steps`` are met;
    recording one epoch end more than asked is harmless, missing the last is not)."""
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    return (bool(trainer.should_stop)
            or (max_epochs not in (None, -1) and trainer.current_epoch + 1 >= max_epochs)
            or (max_steps not in (None, -1) and (trainer.global_step >= max_steps
                                                 or trainer.global_step + _steps_per_epoch(trainer) > max_steps)))


def _steps_per_epoch(trainer: Any) -> int:
    """Optimizer steps in a whole epoch: ``num_training_batches`` over the gradient accumulation (a
    last, shorter group steps too); 0 when the epoch's length is unknown (then only ``max_steps``
    reached tells the last epoch)."""
    batches = trainer.num_training_batches
    if not isinstance(batches, int) or batches <= 0:
        return 0
    return -(-batches // max(int(getattr(trainer, "accumulate_grad_batches", 1) or 1), 1))


def _ran_to_its_end(trainer: Any) -> bool:
    """Whether the epoch now ending ran through all of its batches, by Lightning's own rule (its fit
    loop steps the epoch's learning-rate schedulers only then): ``num_training_batches`` of them
    (``limit_train_batches`` sets that number: a limited epoch is whole) or the data ran out
    (``is_last_batch``, also for data of unknown length). False when ``max_steps`` or
    ``trainer.should_stop`` ended it part-way, after which Lightning still calls ``on_train_epoch_end``."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return progress.current.ready >= trainer.num_training_batches or bool(progress.is_last_batch)


def _why_stopped(trainer: Any) -> str:
    """Why an epoch ended part-way, in Lightning's terms."""
    if trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps:
        return f"max_steps={trainer.max_steps} reached"
    return "trainer.should_stop set" if trainer.should_stop else "Lightning ended it early"


class _LightningCapture(TorchRecorder):
    """The PyTorch recorder, naming Lightning as the framework in the manifest."""

    framework = "lightning"
    resume_help = ("Lightning counts epochs with trainer.current_epoch, which a new Trainer starts at 0: to continue "
                   "this run, resume training from its checkpoint, trainer.fit(module, ..., ckpt_path=...), or call "
                   "fit again on the same Trainer with a larger max_epochs (the run's last epoch is {last})")


class Recorder(RecorderCallback, pl.Callback):
    """A Lightning callback that records chosen layers, predictions, weights and metrics every epoch.

    Epochs follow Lightning's own counter: the model as training starts is recorded at
    ``on_train_start`` as epoch ``trainer.current_epoch`` (0 for a new training, *k* after
    resuming from a checkpoint saved after *k* epochs) unless the run holds it; then the
    epoch that ends at every ``on_train_epoch_end`` as ``current_epoch + 1``. Lightning runs
    the end-of-epoch validation *before* that hook (the fit loop validates on the epoch's
    last batch, then calls the train-epoch-end hooks), so the validation metrics of the epoch
    are in ``trainer.callback_metrics`` when it is recorded, whereas ``on_validation_end``
    would also fire for the sanity check and for mid-epoch validations. Metrics are recorded
    under one spelling (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``:
    ``train_loss``/``val_acc``/``*_epoch`` are renamed); in an epoch that ran no validation
    (``check_val_every_n_epoch > 1``) the validation metrics, which would be stale, are left
    out. With ``every_n_epochs=N`` the last epoch trained is recorded too: at its end when
    Lightning already says it is the last (``max_epochs`` or ``max_steps`` reached, or
    ``trainer.should_stop`` set), else at ``on_train_end`` (an ``EarlyStopping`` decides after
    this hook), while the weights are still the ones the epoch ended with. An epoch that
    ``max_steps`` or ``trainer.should_stop`` ends part-way is not recorded (its number would
    claim an epoch training never finished; a warning says so, and a run recorded with
    ``every_n_steps`` keeps it at its fractional epoch); ``limit_train_batches`` sets how many
    batches an epoch has, so a limited epoch is whole.
    ``fit(..., ckpt_path=...)`` continues the run; an epoch the run already holds (a new
    Trainer, which counts from 0 again, or a resume from an earlier checkpoint) is refused
    before the epoch is trained, with a message that says how to go on, or replaces that
    epoch and the later ones with ``replace_epochs=True``.

    Under DDP only global rank 0 writes; metrics are rank 0's unless they were logged with
    ``sync_dist=True``.

    Parameters
    ----------
    layers : module names from ``pl_module.named_modules()`` whose outputs are recorded
        (e.g. ``"model.hidden"`` when the network sits in ``self.model``).
    probe : ``(x, y)`` the fixed examples recorded every epoch (tensors or arrays; labels
        as integers, one-hot rows or strings).
    run_dir : folder of the run; created, or resumed (appended to) when it holds one.
    test : optional ``(x_test, y_test)``, also recorded every epoch.
    **options : the settings every recorder shares (``class_names``, ``weights``,
        ``probe_size``, ``batch_size``, ``reduce``, ``max_width``, ``reduced_width``,
        ``tokens``, ``keep_inputs``, ``seed``, ``resume``, ``overwrite``, ``replace_epochs``,
        ``binary_threshold``), as for :class:`epochscope.torch.Recorder`.

    Example::

        from epochscope.lightning import Recorder

        trainer = L.Trainer(max_epochs=10, callbacks=[
            Recorder(layers=["model.hidden"], probe=(x_probe, y_probe), run_dir="runs/mnist")])
        trainer.fit(module, train_loader, val_loader)
    """

    def _start(self, probe: Any, test: Any, settings: RecordSettings) -> None:
        # Checked on every rank here, so a bad argument stops all processes alike instead of
        # leaving the others waiting for a rank 0 that failed.
        self.settings = settings
        self._probe, self._test = select_torch_examples(settings, probe, test)
        self._run_dir = settings.run_dir
        self.recorder: TorchRecorder | None = None  # only ever set on global rank 0
        self._validated = False
        self._opened = False

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
        """Check the layer and weight names on every rank; on rank 0 open the run."""
        find_modules(pl_module, self.settings.layers)
        find_weights(pl_module, self.settings.weights)
        if not trainer.is_global_zero:
            return
        if self.recorder is None or self.recorder.model is not pl_module:
            self.close()
            # The probe subset was drawn in _start; drawing it again would only copy it. overwrite=True
            # starts one fresh run, which later fits with this callback continue.
            settings = dataclasses.replace(self.settings, probe_size=None,
                                           overwrite=self.settings.overwrite and not self._opened)
            self._opened = True
            self.recorder = _LightningCapture.from_settings(pl_module, self._probe, settings, test=self._test)
            log.info("recording %s into %s (global rank 0 of %d)", list(self.settings.layers), self._run_dir,
                     trainer.world_size)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Record the model as training starts, as epoch ``trainer.current_epoch``, unless the run holds it.

        Here, not in ``on_fit_start``: a checkpoint's loop state (``current_epoch``) is restored
        between the two. A checkpoint saved in the middle of an epoch holds no finished epoch's
        model, so nothing is recorded then.
        """
        if not trainer.is_global_zero or self.recorder is None:
            return
        epoch = trainer.current_epoch
        if getattr(trainer.fit_loop, "restarted_mid_epoch", False):
            return
        session = self.recorder.session
        if session.schedule.by_step:
            step = trainer.global_step
            session.schedule.last_step = step
            held = session.epochs
            if not held or step > held[-1]:
                self._record_step(step, float(epoch), None)
        elif epoch not in self.recorder.epochs:
            self.recorder._record(epoch, None, counters={"step": trainer.global_step})

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Refuse, before the epoch is trained, an epoch number the run already holds (unless replacing)."""
        self._validated = False
        self._batches_done = None
        message = None
        if trainer.is_global_zero and self.recorder is not None:
            self.recorder.session.schedule.left_out = None  # another epoch starts: the one left out is not the last
            epoch = trainer.current_epoch + 1
            if self.recorder.session.schedule.by_step:
                if not self.settings.replace_epochs:
                    message = self.recorder.session.step_already_recorded(trainer.global_step)
            elif epoch in self.recorder.epochs and not self.settings.replace_epochs:
                message = self.recorder.session.already_recorded(epoch)
        if trainer.world_size > 1:
            # Only rank 0 knows the run: every rank joins this broadcast and stops alike, rather
            # than the others waiting for a rank 0 that stopped.
            message = trainer.strategy.broadcast(message, src=0)
        if message:
            raise ValueError(message)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Record the finished epoch (validation included) as epoch ``trainer.current_epoch + 1``.

        The metrics go to the core raw (it normalises their names); ``step`` is the trainer's.
        """
        metrics = dict(trainer.callback_metrics)  # on every rank: reading it may all-reduce
        if not self._validated:
            metrics = {k: v for k, v in metrics.items() if not (metric_name(k) or "").startswith(_VALIDATION_PREFIXES)}
        if trainer.is_global_zero and self.recorder is not None:
            epoch = trainer.current_epoch + 1
            schedule = self.recorder.session.schedule
            last = _last_epoch(trainer)
            if not schedule.by_step:  # left out (and kept for on_train_end) by the PyTorch recorder's schedule
                if not _ran_to_its_end(trainer):  # its model is no whole epoch's: not recorded as one
                    done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
                    self.recorder.session.cut_short(
                        epoch, f"{_why_stopped(trainer)}, {batches_part(done, trainer.num_training_batches)}",
                        self.cut_short_help)
                    return
                self.recorder._record(epoch, metrics, counters={"step": trainer.global_step}, last=last)
                return
            step, done, metrics = trainer.global_step, self._epoch_end_time(trainer), metrics_now(metrics)

            def take() -> None:
                self._record_step(step, done, metrics)
            if schedule.wants_epoch(epoch, last=last):
                take()
            else:
                schedule.left_out = LeftOut(f"the end of epoch {epoch} (step {step})",
                                            _weights_fingerprint(self.recorder.model), take)

    # -- records inside epochs (every_n_steps; see epochscope.record.schedule)
    _batches_done: int | None = None

    def _epoch_end_time(self, trainer: Any) -> float | None:
        """The fractional epoch at ``on_train_epoch_end``: the next whole epoch when the epoch ran
        to its end, else (``max_steps`` or ``should_stop`` ending it early) the batches it ran over
        its length; ``None`` when it stopped early and its length is unknown."""
        epoch, batches, done = trainer.current_epoch, trainer.num_training_batches, self._batches_done
        if done is None:
            return float(epoch + 1)
        known = fractional_epoch(epoch, done, batches)
        if known is not None:
            return known
        stopped = trainer.should_stop or (trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps)
        return None if stopped else float(epoch + 1)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Record every ``every_n_steps`` optimizer steps (``trainer.global_step``, which counts
        optimizer steps, so gradient accumulation records once per step), on global rank 0 only,
        with the batch's loss from ``training_step``'s output (nothing is read that could start a
        collective). The epoch's last batch is left to ``on_train_epoch_end`` (same model, with
        the epoch's validation metrics). Its fractional epoch is ``current_epoch + (batch_idx + 1)
        / num_training_batches``; unknown (``None``) when Lightning does not know the epoch's length."""
        self._batches_done = batch_idx + 1  # this epoch's batches so far (read at the epoch's end)
        if not trainer.is_global_zero or self.recorder is None or not self.recorder.session.schedule.by_step:
            return
        schedule = self.recorder.session.schedule
        step = trainer.global_step
        if not schedule.step_due(step):
            return
        batches = trainer.num_training_batches
        if batch_idx + 1 >= batches and schedule.wants_epoch(trainer.current_epoch + 1, last=_last_epoch(trainer)):
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        metrics = {"loss": loss} if loss is not None else None
        self._record_step(step, fractional_epoch(trainer.current_epoch, batch_idx + 1, batches), metrics)

    def _record_step(self, step: int, epochs_done: float | None, metrics: Any) -> None:
        if self.recorder is None:  # only rank 0 holds a recorder
            return
        self.recorder._capture_record(self.recorder.session.start_step(step, epochs_done), metrics,
                                      {"step": step})

    #: How to record where training stops inside an epoch (an epoch cut short is not recorded in an epoch run).
    cut_short_help = ("To record the model where training stops inside an epoch, record every N optimizer steps "
                      "(Recorder(..., every_n_steps=N)): each record then keeps its fractional epoch")

    #: What to do when the last epoch, left out by every_n_epochs, cannot be recorded at on_train_end.
    changed_help = ("The on_train_end of a callback listed before the Recorder changed the weights "
                    "(StochasticWeightAveraging swaps in its average, a callback loads the best checkpoint...); list "
                    "the Recorder before it, or give max_epochs a multiple of every_n_epochs")

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Record the last epoch trained if ``every_n_epochs`` left it out at its end (training
        stopped by an ``EarlyStopping`` or another callback after this hook ran), while the weights
        are still the ones it ended with (rank 0)."""
        if self.recorder is not None:
            self.recorder._record_left_out(self.changed_help)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.recorder is not None:  # training failed: the model is not a finished epoch's
            self.recorder.session.schedule.left_out = None
        self.close()
