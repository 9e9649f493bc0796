"""Record a Keras 3 model from inside ``model.fit``: one callback, nothing else to change.

Users import it as ``from epochscope.keras import Recorder``. The callback reads layer
outputs through a second Keras model that shares the trained model's layers (the
idiomatic "feature extractor" of the Keras docs) and calls only public, backend-neutral
Keras API, so it works on the torch, JAX and TensorFlow backends alike. Everything else
(labels, reduction of wide layers, writing the run) is the framework-free core's job.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import MissingDependencyError, unknown_name_message
from .._optional import require
from ..run import open_run
from ..weight_layout import FLATTEN_ORDER_KEY
from .core import EpochRecording, RecordingSession
from .probe import select_examples
from .settings import RecorderCallback, RecordSettings


def _import_keras():
    try:
        return require("keras", extra="keras", purpose="recording Keras models")
    except MissingDependencyError as err:
        if importlib.util.find_spec("keras") is None:
            raise
        # Keras is there but its backend is not: "install epochscope[keras]" would not help.
        backend = os.environ.get("KERAS_BACKEND", "tensorflow (Keras' default)")
        raise MissingDependencyError(
            f"keras is installed but failed to import with backend {backend} ({err.__cause__}); install that "
            "backend, or choose an installed one before importing: KERAS_BACKEND=torch (or jax, tensorflow)"
        ) from err.__cause__


keras = _import_keras()

__all__ = ["Recorder", "find_layers", "layer_extractor"]

log = logging.getLogger("epochscope")

# Layers whose weights "auto" records; the kernels are stored in PyTorch's layout (see _torch_layout).
_WEIGHT_TYPES = tuple(
    getattr(keras.layers, name)
    for name in ("Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
    if hasattr(keras.layers, name)
)

_SUBCLASSED_HELP = (
    "Subclassed models (a class that overrides call()) have no layer graph, so their inner "
    "layers' outputs cannot be read by name; with layers=[] the recorder still records "
    "metrics, predictions and weights. To record a layer, build the model with keras.Sequential "
    "or the Functional API (keras.Model(inputs, outputs))."
)


# --------------------------------------------------------------------------- model access


def _all_layers(model: Any) -> list[Any]:
    """Every layer, nested models' layers included, in model order."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def _graph_input(model: Any) -> Any | None:
    """The model's symbolic input(s) in the structure it is called with, or ``None`` for a
    model without a layer graph (subclassed, or a Sequential that was never built)."""
    try:
        return model.input  # Functional: keeps a dict or list of inputs as declared
    except (AttributeError, ValueError):
        pass
    try:
        inputs = model.inputs  # Sequential: a list of one
    except (AttributeError, ValueError):
        return None
    return inputs[0] if len(inputs) == 1 else inputs


def find_layers(model: Any, names: Sequence[str]) -> dict[str, Any]:
    """Look up layers by name (top-level and nested); an unknown name lists the ones that exist.

    >>> find_layers(model, ["hidden"])  # doctest: +SKIP
    {'hidden': <Dense name=hidden, built=True>}
    """
    layers = {layer.name: layer for layer in _all_layers(model)}
    found = {}
    for name in names:
        if name not in layers:
            raise ValueError(
                unknown_name_message("layer", name, list(layers))
                + f" (names of the layers of Keras model '{model.name}'; see model.summary())"
            )
        found[name] = layers[name]
    return found


def layer_extractor(model: Any, layers: Mapping[str, Any]) -> Any:
    """A Keras model sharing ``model``'s layers whose outputs are ``[*layer outputs, model output]``.

    Needs a layer graph: a Sequential or Functional model that has been built (``fit`` builds
    it). Raises ``TypeError`` for a subclassed model, explaining what it supports.
    """
    if not layers:
        return model
    graph_input = _graph_input(model)
    if graph_input is None:
        raise TypeError(
            f"epochscope cannot record layers {list(layers)} of Keras model '{model.name}' "
            f"({type(model).__name__}). {_SUBCLASSED_HELP}"
        )
    outputs = []
    for name, layer in layers.items():
        try:
            outputs.append(layer.output)
        except (AttributeError, ValueError, RuntimeError) as err:
            # Keras may drop the cause of an error raised in a callback: say it all here.
            raise ValueError(
                f"layer '{name}' of Keras model '{model.name}' has no single symbolic output "
                f"({type(err).__name__}: {err}); record a layer that is called exactly once in the model"
            ) from err
    try:
        return keras.Model(inputs=graph_input, outputs=[*outputs, model.outputs[0]], name=f"{model.name}_epochscope")
    except ValueError as err:
        nested = [n for n, layer in layers.items() if not any(layer is top for top in model.layers)]
        hint = (f"layers {nested} sit inside a nested model, whose graph starts at its own input; record the "
                "nested model's output by its name instead" if nested else "record layers of the model's own graph")
        raise ValueError(f"cannot read layers {list(layers)} from Keras model '{model.name}' ({err}); {hint}") from err


def _is_channels_last(layer: Any) -> bool:
    data_format = getattr(layer, "data_format", None) or keras.config.image_data_format()
    return data_format == "channels_last"


def _channels_first(array: np.ndarray, channels_last: bool) -> np.ndarray:
    """(b, *spatial, C) -> (b, C, *spatial), so 'pool' averages over space as for PyTorch."""
    if channels_last and array.ndim >= 3:
        return np.moveaxis(array, -1, 1)
    return array


def _torch_layout(kernel: np.ndarray) -> np.ndarray:
    """Keras kernels (in, out) / (*k, in, out) in PyTorch's (out, in) / (out, in, *k) layout.

    One layout in every run, whatever recorded it, so the network drawing reads any run.
    (Transposed convolutions come out as (in, out, *k), which is PyTorch's layout for them too.)
    """
    r = kernel.ndim
    return np.transpose(kernel, (r - 1, r - 2, *range(r - 2))) if r >= 2 else kernel


def _weight_layers(model: Any, weights: str | Sequence[str] | None) -> dict[str, Any]:
    if weights is None or (not isinstance(weights, str) and len(weights) == 0):
        return {}
    if weights == "auto":
        return {layer.name: layer for layer in _all_layers(model) if isinstance(layer, _WEIGHT_TYPES)}
    return find_layers(model, weights)


def _weight_arrays(layers: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``{"hidden.weight": (out, in), "hidden.bias": (out,), ...}`` for the chosen layers."""
    arrays = {}
    for name, layer in layers.items():
        for variable in layer.weights:
            value = np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)
            short = variable.name.split("/")[-1]
            if short == "kernel" and isinstance(layer, _WEIGHT_TYPES):
                arrays[f"{name}.weight"] = _torch_layout(value)
            else:
                arrays[f"{name}.{short}"] = value
    return arrays


# --------------------------------------------------------------------------- inputs


def _num_examples(x: Any, what: str) -> int:
    leaves = keras.tree.flatten(x)
    if not leaves:
        raise ValueError(f"{what}: no arrays given")
    sizes = {len(leaf) for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(f"{what}: the input arrays hold different numbers of examples {sorted(sizes)}")
    return sizes.pop()


def _take(x: Any, index: Any) -> Any:
    return keras.tree.map_structure(lambda leaf: np.asarray(leaf)[index], x)


def _thumbnails(x: Any) -> np.ndarray | None:
    """Inputs to keep for pictures: images turned channel-first as the run stores them."""
    if not isinstance(x, np.ndarray):
        return None
    if x.ndim == 4 and keras.config.image_data_format() == "channels_last":
        return np.moveaxis(x, -1, 1)
    return x


# --------------------------------------------------------------------------- the callback


class Recorder(RecorderCallback, keras.callbacks.Callback):
    """A Keras callback that records chosen layers, predictions, weights and metrics every epoch.

    Epoch 0 (the untrained model) is recorded when training begins, then one epoch at every
    epoch end, into ``run_dir``. Calling ``fit`` again (also with a new ``Recorder``) appends
    to the same run: epochs are numbered by what the run already holds, and epoch 0 is
    recorded once. Metrics come from Keras' logs, with ``acc``/``val_acc`` (or
    ``sparse_categorical_accuracy``...) recorded as ``accuracy``/``val_accuracy``.

    Parameters
    ----------
    layers : names of layers (``model.summary()``) whose outputs are recorded. Sequential
        and Functional models only; for a subclassed model pass ``[]`` (metrics,
        predictions and weights are still recorded).
    probe : ``(x, y)`` the fixed examples recorded every epoch, in the layout the model
        takes (channel-last images as usual in Keras); labels as integers, one-hot rows
        (``to_categorical``) or strings.
    run_dir : folder of the run; created, or resumed (appended to) when it holds one.
    test : optional ``(x_test, y_test)``, also recorded every epoch (laid onto the map).
    **options : the settings every recorder shares, checked by
        :class:`~epochscope.record.settings.RecordSettings`: ``class_names``, ``weights``
        (``"auto"``: every Dense and Conv layer; or layer names; or ``None``; kernels are
        stored in PyTorch's layout, ``"<layer>.weight"`` as (out, in) for Dense and
        (out, in, *kernel) for Conv), ``probe_size``, ``batch_size`` (256),
        ``reduce``/``max_width``/``reduced_width`` (channel-last outputs are turned
        channel-first before, so ``reduce="pool"`` averages over space), ``keep_inputs``,
        ``seed``, ``resume``.

    Example::

        from epochscope.keras import Recorder

        model.fit(x, y, epochs=10, validation_split=0.2,
                  callbacks=[Recorder(layers=["hidden"], probe=(x_probe, y_probe),
                                      test=(x_test, y_test), run_dir="runs/mnist")])
    """

    def _start(self, probe: Any, test: Any, settings: RecordSettings) -> None:
        # Everything about the arguments is checked here, outside fit, where errors keep their cause.
        self.settings = settings
        self.layer_names = list(settings.layers)
        (self.x_probe, self.y_probe), test_pair = select_examples(
            settings, probe, test, count=_num_examples, take=_take)
        self.x_test, self.y_test = test_pair if test_pair is not None else (None, None)
        self._run_dir = settings.run_dir
        self.session: RecordingSession | None = None
        self._extractor: Any = None
        self._layers: dict[str, Any] = {}
        self._weight_layers: dict[str, Any] = {}

    # -- lifetime
    @property
    def run_dir(self) -> str:
        return self.session.path if self.session is not None else self._run_dir

    @property
    def run(self):
        """The run opened for reading (see :class:`epochscope.Run`)."""
        return open_run(self.run_dir)

    def close(self) -> None:
        """Release the run (its lock). Done at the end of every ``fit``; safe to call twice.

        Keras calls no hook when ``fit`` fails: after an interrupted ``fit``, call this (or
        pass the same recorder to the next ``fit``) before another recorder writes the run.
        """
        if self.session is not None:
            self.session.close()
            self.session = None

    def _open(self) -> RecordingSession:
        keep = self.settings.keep_inputs
        return RecordingSession(
            self.settings,
            probe_labels=self.y_probe,
            test_labels=self.y_test,
            probe_inputs=_thumbnails(self.x_probe) if keep else None,
            test_inputs=_thumbnails(self.x_test) if keep and self.x_test is not None else None,
            framework="keras",
            info={"model": self.model.name, "backend": keras.backend.backend(), "keras": keras.__version__,
                  # How Flatten orders a conv output: the network drawing reads dense weights after a conv so.
                  FLATTEN_ORDER_KEY: keras.config.image_data_format()},
        )

    # -- Keras hooks
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Look the layers up in the (now built) model, open the run and record epoch 0 once."""
        model = self.model
        self._layers = find_layers(model, self.layer_names)
        self._weight_layers = _weight_layers(model, self.settings.weights)
        self._extractor = layer_extractor(model, self._layers)
        if self.session is None:
            self.session = self._open()
            log.info("recording %s of Keras model '%s' into %s from epoch %d", self.layer_names, model.name,
                     self.session.path, self.session.next_epoch)
        if self.session.next_epoch == 0:
            self.record(metrics={})

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Record the epoch that just ended as the run's next epoch, with Keras' logs as metrics.

        Keras' own ``epoch`` restarts at 0 with every ``fit`` call; the run keeps counting.
        The logs are stored under one spelling by the core (``acc`` -> ``accuracy``...).
        """
        self.record(metrics=logs)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self.close()

    # -- capture
    def record(self, metrics: Mapping[str, Any] | None = None) -> int:
        """Capture the model now as the run's next epoch and commit it; returns the epoch.

        Called by the hooks; call it yourself only to record outside ``fit``.
        """
        if self._extractor is None:
            raise RuntimeError("the recorder has no model yet: pass it to model.fit(callbacks=[...]) first")
        if self.session is None:
            self.session = self._open()
        with self.session.start_epoch() as rec:
            self._capture(rec, "probe", self.x_probe)
            if self.x_test is not None:
                self._capture(rec, "test", self.x_test)
            return rec.commit(metrics=metrics, weights=_weight_arrays(self._weight_layers))

    def _capture(self, rec: EpochRecording, split: str, x: Any) -> None:
        n = _num_examples(x, f"{split} x")
        channels_last = {name: _is_channels_last(layer) for name, layer in self._layers.items()}
        batch_size = self.settings.batch_size
        for start in range(0, n, batch_size):
            batch = _take(x, slice(start, start + batch_size))
            outputs = keras.tree.flatten(self._extractor.predict_on_batch(batch))
            arrays = [np.asarray(out) for out in outputs]  # [*layers, model output] (see layer_extractor)
            layer_outputs = {name: _channels_first(arrays[i], channels_last[name]) for i, name in enumerate(self._layers)}
            rec.add_batch(split, start, layer_outputs, arrays[len(self._layers)])
