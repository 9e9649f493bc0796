"""Record a PyTorch model: forward hooks by module name, one capture per epoch.

Users import it as ``from epochscope.torch import Recorder``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import unknown_name_message
from .._optional import require
from ..run import open_run
from .core import RecordingSession
from .probe import select_examples
from .settings import RecordSettings, settings_from_options, with_options_signature

torch = require("torch", extra="torch", purpose="recording PyTorch models")
nn = torch.nn

__all__ = ["Recorder", "capture", "find_modules", "find_weights", "select_torch_examples"]

log = logging.getLogger("epochscope")

_WEIGHT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _to_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.as_tensor(np.asarray(x))


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def first_tensor(output: Any, where: str) -> torch.Tensor:
    """The tensor to record from a module's output: itself, or the first tensor of a tuple/list."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    if isinstance(output, Mapping):
        raise TypeError(
            f"{where} returns a dict ({', '.join(map(str, list(output)[:5]))}); record a submodule that "
            "returns a tensor, or wrap the layer so it returns the tensor you want to see"
        )
    raise TypeError(f"{where} returns {type(output).__name__}, not a tensor; record a module whose output is a tensor")


def find_modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """Look up modules by their ``named_modules()`` name; unknown names list the ones that exist."""
    modules = dict(model.named_modules())
    found = {}
    for name in names:
        if name not in modules:
            available = [n for n in modules if n]
            raise ValueError(unknown_name_message("layer", name, available) + " (names from model.named_modules())")
        found[name] = modules[name]
    return found


def capture(model: nn.Module, modules: Mapping[str, nn.Module], x: torch.Tensor, *, batch_size: int,
            device: torch.device, on_batch) -> None:
    """Run ``model`` over ``x`` in eval mode without gradients, calling
    ``on_batch(start, {name: output ndarray}, model_output ndarray)`` per batch.

    Hooks are registered here and removed in ``finally``, and the model's training mode is
    restored, also when the forward pass raises.
    """
    outputs: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            outputs[name] = first_tensor(output, f"layer '{name}'").detach()
        return hook

    was_training = model.training
    handles = [module.register_forward_hook(hook_for(name)) for name, module in modules.items()]
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                outputs.clear()
                batch = x[start:start + batch_size].to(device, non_blocking=True)
                result = model(batch)
                missing = [n for n in modules if n not in outputs]
                if missing:
                    raise RuntimeError(f"layers {missing} were not called in the forward pass; record layers the model uses")
                layer_arrays = {n: outputs[n].float().cpu().numpy() for n in modules}
                logits = first_tensor(result, "the model").float().cpu().numpy()
                on_batch(start, layer_arrays, logits)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def find_weights(model: nn.Module, weights: str | Sequence[str] | None) -> dict[str, torch.Tensor]:
    """The parameters to record: ``"auto"`` (every Linear and Conv layer's), a list of module
    or parameter names, or ``None``; an unknown name lists the ones that exist.

    >>> list(find_weights(nn.Sequential(nn.Linear(2, 3)), "auto"))
    ['0.weight', '0.bias']
    """
    if weights is None or weights == [] or weights == ():
        return {}
    if weights == "auto":
        found = {}
        for name, module in model.named_modules():
            if isinstance(module, _WEIGHT_TYPES):
                for pname, p in module.named_parameters(recurse=False):
                    found[f"{name}.{pname}"] = p
        return found
    if isinstance(weights, str):
        raise ValueError(f"weights must be 'auto', None or a list of module/parameter names, got {weights!r}")
    params = dict(model.named_parameters())
    modules = dict(model.named_modules())
    found = {}
    for name in weights:
        if name in params:
            found[name] = params[name]
        elif name in modules and name:
            for pname, p in modules[name].named_parameters(recurse=False):
                found[f"{name}.{pname}"] = p
        else:
            raise ValueError(unknown_name_message("weight", name, [*params, *(m for m in modules if m)]))
    return found


def select_torch_examples(settings: RecordSettings, probe: Any, test: Any = None):
    """:func:`~epochscope.record.probe.select_examples` for tensors or arrays (labels moved to numpy)."""
    return select_examples(settings, probe, test, labels=_to_numpy,
                           take=lambda x, index: _to_tensor(x)[torch.as_tensor(index)])


class Recorder:
    """Records a PyTorch model's chosen layers, predictions and weights at every epoch.

    Parameters
    ----------
    model : the ``nn.Module`` being trained (any device).
    layers : module names from ``model.named_modules()`` whose outputs are recorded
        (``[]``: predictions, weights and metrics only).
    probe : ``(x, y)`` the fixed examples recorded every epoch (tensors or arrays; labels
        as integers, one-hot rows or strings).
    run_dir : folder of the run; created, or resumed (appended to) when it holds one.
    test : optional ``(x_test, y_test)``, also recorded every epoch (laid onto the map).
    **options : the settings every recorder shares, checked by
        :class:`~epochscope.record.settings.RecordSettings`: ``class_names``, ``weights``
        (``"auto"``: every Linear and Conv layer; or module or parameter names; or ``None``),
        ``probe_size``, ``batch_size`` (256), ``reduce``/``max_width``/``reduced_width``
        (layers wider than 2,048 values per example), ``keep_inputs``, ``seed``, ``resume``.

    Example::

        rec = Recorder(model, layers=["hidden"], probe=(x, y), run_dir="runs/mnist")
        rec.record(0)                           # the untrained model
        for epoch in range(1, 11):
            train_one_epoch(model)
            rec.record(epoch, metrics={"loss": loss, "accuracy": acc})
        rec.close()
    """

    #: Written into the manifest; an adapter that records through this class names itself here.
    framework = "torch"

    @with_options_signature
    def __init__(self, model: nn.Module, layers: Sequence[str], probe: tuple[Any, Any], run_dir: str,
                 test: tuple[Any, Any] | None = None, **options: Any) -> None:
        self._start(model, probe, test, settings_from_options(run_dir, layers, options, who="Recorder"))

    @classmethod
    def from_settings(cls, model: nn.Module, probe: tuple[Any, Any], settings: RecordSettings,
                      test: tuple[Any, Any] | None = None) -> Recorder:
        """A recorder for ``model`` from settings already built (one settings object, several recorders)."""
        recorder = cls.__new__(cls)
        recorder._start(model, probe, test, settings)
        return recorder

    def _start(self, model: nn.Module, probe: Any, test: Any, settings: RecordSettings) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}; pass the network "
                            "being trained")
        self.settings = settings
        self.model = model
        self.modules = find_modules(model, settings.layers)
        self._weights = find_weights(model, settings.weights)
        (x, y), test_pair = select_torch_examples(settings, probe, test)
        self.x_probe = _to_tensor(x).float()
        self.x_test = _to_tensor(test_pair[0]).float() if test_pair is not None else None
        self.batch_size = settings.batch_size
        keep = settings.keep_inputs
        self.session = RecordingSession(
            settings,
            probe_labels=y,
            test_labels=None if test_pair is None else test_pair[1],
            probe_inputs=self.x_probe.cpu().numpy() if keep else None,
            test_inputs=self.x_test.cpu().numpy() if keep and self.x_test is not None else None,
            framework=self.framework,
            info={"model": type(model).__name__},
        )

    # -- lifetime
    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the run (its lock). Every recorded epoch is already on disk."""
        self.session.close()

    @property
    def run_dir(self) -> str:
        return self.session.path

    @property
    def next_epoch(self) -> int:
        """The epoch number :meth:`record` uses when called without one."""
        return self.session.next_epoch

    @property
    def run(self):
        """The run opened for reading (see :class:`epochscope.Run`)."""
        return open_run(self.session.path)

    # -- recording
    def record(self, epoch: int | None = None, metrics: Mapping[str, Any] | None = None) -> int:
        """Capture the model now as ``epoch`` (default: the next one) and commit it to disk.

        ``metrics`` (loss, accuracy, val_loss, val_accuracy, ...) are stored with the epoch
        under one spelling (:func:`epochscope.metric_names.normalise_metrics`: ``train_loss``
        -> ``loss``, ``val_acc`` -> ``val_accuracy``; a metric named like one epochscope
        writes, such as ``epoch``, is kept as ``user_epoch``); ``probe_accuracy`` and
        ``test_accuracy`` are added from the predictions. Returns the epoch.
        """
        return self._record(epoch, metrics)

    def _record(self, epoch: int | None, metrics: Mapping[str, Any] | None,
                counters: Mapping[str, float | int] | None = None) -> int:
        device = _model_device(self.model)
        with self.session.start_epoch(epoch) as rec:
            splits = [("probe", self.x_probe)] + ([("test", self.x_test)] if self.x_test is not None else [])
            for split, x in splits:
                capture(self.model, self.modules, x, batch_size=self.batch_size, device=device,
                        on_batch=lambda start, acts, logits, split=split: rec.add_batch(split, start, acts, logits))
            weights = {name: p.detach().float().cpu().numpy() for name, p in self._weights.items()}
            return rec.commit(metrics=metrics, weights=weights, counters=counters)
