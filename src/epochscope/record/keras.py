"""Record a Keras 3 model from inside ``model.fit``: one callback, nothing else to change.

Users import it as ``from epochscope.keras import Recorder``. The callback reads layer
outputs through a second Keras model that shares the trained model's layers (the
idiomatic "feature extractor" of the Keras docs) and calls public, backend-neutral Keras
API, so it works on the torch, JAX and TensorFlow backends alike. Everything else
(labels, reduction of wide layers, writing the run) is the framework-free core's job.

- **Outputs by name, never by position.** The extractor's outputs are a dict, one entry
  per recorded layer plus the prediction, so a layer with several outputs
  (``LSTM(return_state=True)``) cannot shift the others: it records its first output, or
  the one named as ``"lstm[1]"``. A layer called more than once in the model is refused
  with the number of calls, or recorded at the call named as ``"dense@2"`` (from 1).
- **Sequences.** A 3-D output of a layer without a ``data_format`` (LSTM, GRU, Embedding,
  MultiHeadAttention, Dense on sequences...) is a sequence ``(N, T, E)``, reduced over its
  tokens (``tokens=``), honouring an ``attention_mask`` or ``padding_mask`` input (true or
  non-zero: a real token, as in KerasHub). A 3-D output of a convolution or pooling layer
  is channel-last ``(N, L, C)`` and stored channel-first.
- **Epochs** follow Keras' counter: the model when ``fit`` starts is epoch ``initial_epoch``
  (recorded unless the run holds it), the end of Keras' epoch ``e`` is epoch ``e + 1``.
- **The last epoch** of every ``fit`` is recorded whatever ``every_n_epochs`` says: at its end
  when Keras already says it is the last (``fit``'s ``epochs`` reached, or ``stop_training``
  set, by the batches or by an EarlyStopping listed before the recorder); else at
  ``on_train_end``, when the weights are still the ones the epoch ended with.
"""

from __future__ import annotations

import dataclasses
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
from .layer_spec import LayerSpec, base_name, parse_layer_spec, path_text
from .probe import select_examples
from .schedule import LeftOut, batches_part, fingerprint, fractional_epoch, metrics_now, record_left_out
from .settings import RecorderCallback, RecordSettings
from .training_call import TrainingCall


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

__all__ = ["Recorder", "find_layer_specs", "find_layers", "layer_extractor"]

log = logging.getLogger("epochscope")

# Inputs that mark the real tokens of a sequence (true or non-zero: a real token, as in KerasHub).
_MASK_INPUTS = ("attention_mask", "padding_mask")
_PREDICTION = "__prediction__"

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


def find_layer_specs(model: Any, names: Sequence[str]) -> dict[str, LayerSpec]:
    """What each name of ``layers`` asks for (``"lstm[1]"``, ``"dense@2"``: see
    :mod:`epochscope.record.layer_spec`); an unknown name lists the layers that exist."""
    layers = {layer.name for layer in _all_layers(model)}
    found = {}
    for name in names:
        spec = parse_layer_spec(name, lambda n: n in layers)
        if spec is None:
            find_layers(model, [base_name(name)])  # raises the "did you mean" message
        found[name] = spec
    return found


def _first_leaf(value: Any) -> Any:
    leaves = keras.tree.flatten(value)
    return leaves[0] if leaves else None


def _part(value: Any, path: Sequence[int | str], where: str) -> Any:
    """The symbolic tensor at ``path`` in a layer's output structure, else its first tensor."""
    part = value
    for step in path:
        try:
            if isinstance(part, Mapping):
                part = part[step] if step in part else list(part.values())[step]
            elif isinstance(part, (list, tuple)) and isinstance(step, int):
                part = part[step]
            else:
                part = getattr(part, str(step))
        except (KeyError, IndexError, AttributeError, TypeError):
            shape = keras.tree.map_structure(lambda t: tuple(t.shape), value)
            raise ValueError(f"{where}: no part [{step}] in the layer's outputs {shape}; name a part it has, "
                             "e.g. [0]") from None
    return _first_leaf(part)


def _graph_nodes(model: Any) -> list[Any] | None:
    """The nodes of the model's own graph (Keras keeps them privately; ``None`` when it does not)."""
    graph = getattr(model, "_functional", None) or model
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if not isinstance(by_depth, Mapping):
        return None
    return [node for nodes in by_depth.values() for node in nodes]


def _layer_output(model: Any, spec: LayerSpec, layer: Any) -> Any:
    """The symbolic output of the chosen call of ``layer`` in ``model``'s graph (its structure)."""
    nodes = _graph_nodes(model)
    inbound = getattr(layer, "_inbound_nodes", None)
    calls = [node for node in inbound if nodes is None or any(node is m for m in nodes)] if inbound else []
    if len(calls) > 1 and spec.call is None:
        raise ValueError(
            f"layer '{spec.name}' of Keras model '{model.name}' is called {len(calls)} times in the model (a shared "
            f"layer), so which output to record is ambiguous; record one call by its number, '{spec.layer}@1' to "
            f"'{spec.layer}@{len(calls)}'{path_text(spec.path)} (counted from 1 in the order the model was built)")
    if spec.call is not None:
        if spec.call > max(len(calls), 1):
            raise ValueError(f"layer '{spec.name}' asks for call {spec.call}, but Keras model '{model.name}' calls "
                             f"'{spec.layer}' {max(len(calls), 1)} time(s)")
        if calls:
            return calls[spec.call - 1].outputs
    try:
        return layer.output
    except (AttributeError, ValueError, RuntimeError) as err:
        # Keras may drop the cause of an error raised in a callback: say it all here.
        raise ValueError(
            f"layer '{spec.name}' of Keras model '{model.name}' has no symbolic output "
            f"({type(err).__name__}: {err}); record a layer of the model's graph"
        ) from err


def _prediction_output(model: Any) -> Any:
    """The model's class scores: its ``logits`` output when it has one by that name, else its first."""
    try:
        output = model.output  # a Functional model keeps its outputs' structure (a dict of heads...)
    except (AttributeError, ValueError):
        output = model.outputs  # a Sequential: a list of one
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    return _first_leaf(output)


def layer_extractor(model: Any, layers: Mapping[str, Any], specs: Mapping[str, LayerSpec] | None = None) -> Any:
    """A Keras model sharing ``model``'s layers whose outputs are a dict: one entry per
    recorded layer (by its name in ``layers``) and the prediction (key ``"__prediction__"``).

    A dict, so each output is found by name, never by position: a layer with several
    outputs cannot shift the others. Needs a layer graph: a Sequential or Functional model
    that has been built (``fit`` builds it). Raises ``TypeError`` for a subclassed model,
    explaining what it supports.
    """
    specs = specs or {name: LayerSpec(name, name) for name in layers}
    graph_input = _graph_input(model)
    if graph_input is None:
        if not layers:
            return None
        raise TypeError(
            f"epochscope cannot record layers {list(layers)} of Keras model '{model.name}' "
            f"({type(model).__name__}). {_SUBCLASSED_HELP}"
        )
    outputs = {name: _part(_layer_output(model, specs[name], layer), specs[name].path, f"layer '{name}'")
               for name, layer in layers.items()}
    outputs[_PREDICTION] = _prediction_output(model)
    try:
        return keras.Model(inputs=graph_input, outputs=outputs, name=f"{model.name}_epochscope")
    except ValueError as err:
        nested = [n for n, layer in layers.items() if not any(layer is top for top in model.layers)]
        hint = (f"layers {nested} sit inside a nested model, whose graph starts at its own input; record the "
                "nested model's output by its name instead" if nested else "record layers of the model's own graph")
        raise ValueError(f"cannot read layers {list(layers)} from Keras model '{model.name}' ({err}); {hint}") from err


def _is_channels_last(layer: Any) -> bool:
    data_format = getattr(layer, "data_format", None) or keras.config.image_data_format()
    return data_format == "channels_last"


def _is_sequence_layer(layer: Any) -> bool:
    """A layer whose 3-D output is (N, T, E), tokens then features: one without a data_format
    (a convolution's or pooling's 3-D output is (N, L, C) or (N, C, L), an image row)."""
    return getattr(layer, "data_format", None) is None


def _channels_first(array: np.ndarray, channels_last: bool) -> np.ndarray:
    """(b, *spatial, C) -> (b, C, *spatial), so 'pool' averages over space as for PyTorch."""
    if channels_last and array.ndim >= 3:
        return np.moveaxis(array, -1, 1)
    return array


def _token_mask(batch: Any) -> tuple[str, np.ndarray] | None:
    """``(input name, (b, T) bool of real tokens)`` when the inputs are a dict carrying a mask."""
    if isinstance(batch, Mapping):
        for name in _MASK_INPUTS:
            mask = batch.get(name)
            if mask is not None and np.ndim(mask) == 2:
                return name, np.asarray(mask) != 0
    return None


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


def _copied(x: Any) -> Any:
    """``x`` with every numpy leaf copied (other leaves, backend tensors, as given)."""
    return keras.tree.map_structure(lambda leaf: leaf.copy() if isinstance(leaf, np.ndarray) else leaf, x)


def _as_arrays(x: Any) -> Any:
    """The inputs as numpy arrays in their own dtype (Keras casts them to its Input's dtype)."""
    return keras.tree.map_structure(np.asarray, x)


def _thumbnails(x: Any) -> Any:
    """The inputs for the core, which fingerprints them and keeps them for pictures when they
    are one numeric array: images turned channel-first as the run stores them; several inputs
    (a list or dict) as they are, for the fingerprint only."""
    if isinstance(x, (list, tuple, Mapping)):
        return x
    if not isinstance(x, np.ndarray):
        return None
    if x.ndim == 4 and keras.config.image_data_format() == "channels_last":
        return np.moveaxis(x, -1, 1)
    return x


# --------------------------------------------------------------------------- the callback


class Recorder(RecorderCallback, keras.callbacks.Callback):
    """A Keras callback that records chosen layers, predictions, weights and metrics every epoch.

    Epochs follow Keras' own counter: the model as ``fit`` starts is epoch ``initial_epoch``
    (0, the untrained model, unless ``fit(initial_epoch=k)`` resumes training), recorded
    unless the run holds it; the end of Keras' epoch ``e`` is epoch ``e + 1``. With
    ``every_n_epochs=N`` the last epoch a ``fit`` trains is recorded too, also when training
    stops early (``EarlyStopping``, ``model.stop_training = True``), and the run is released
    at ``on_train_end``. An epoch that ``stop_training`` ends part-way (``TerminateOnNaN``, a
    callback stopping after a batch) is not recorded: its number would claim an epoch training
    never finished (a warning says so; a run recorded with ``every_n_steps`` keeps it at its
    fractional epoch). ``steps_per_epoch`` sets how many batches an epoch has; for data of
    unknown length an epoch ending with ``stop_training`` set is whole when it ran as many batches
    as the fit's previous whole epoch (an ``EarlyStopping`` stops after the last batch), and is not
    recorded otherwise. To continue a
    run with another ``fit`` (also with a new ``Recorder``) pass ``initial_epoch``; an epoch
    the run already holds is refused before it is trained, with a message that says how to go
    on, or replaced with every later one when the recorder has ``replace_epochs=True``.
    Metrics come from Keras' logs, with ``acc``/``val_acc`` (or
    ``sparse_categorical_accuracy``...) recorded as ``accuracy``/``val_accuracy``.

    Parameters
    ----------
    layers : names of layers (``model.summary()``) whose outputs are recorded. Sequential
        and Functional models only; for a subclassed model pass ``[]`` (metrics,
        predictions and weights are still recorded). ``"lstm[1]"`` records one output of a
        layer with several, ``"dense@2"`` the second call of a shared layer.
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
        channel-first before, so ``reduce="pool"`` averages over space), ``tokens``
        (sequence outputs), ``keep_inputs``, ``seed``, ``resume``, ``overwrite``,
        ``replace_epochs``, ``binary_threshold``.

    Example::

        from epochscope.keras import Recorder

        model.fit(x, y, epochs=10, validation_split=0.2,
                  callbacks=[Recorder(layers=["hidden"], probe=(x_probe, y_probe),
                                      test=(x_test, y_test), run_dir="runs/mnist")])
    """

    #: How to continue a run in Keras (see RecordingSession's resume_help).
    resume_help = ("Keras counts epochs from fit's initial_epoch (0 unless given): to continue this run, pass "
                   "model.fit(..., initial_epoch={last}, epochs={last} + N) to train N more epochs")

    def _start(self, probe: Any, test: Any, settings: RecordSettings) -> None:
        # Everything about the arguments is checked here, outside fit, where errors keep their cause.
        self.settings = settings
        self.layer_names = list(settings.layers)
        (self.x_probe, self.y_probe), test_pair = select_examples(
            settings, probe, test, count=_num_examples, take=_take)
        self.x_test, self.y_test = test_pair if test_pair is not None else (None, None)
        # Copies, taken once: a view of the user's array (a slice of x_train) changed in place later
        # (normalised, augmented) would change what later epochs record while the run keeps the first inputs.
        self.x_probe = _copied(self.x_probe)
        self.x_test = _copied(self.x_test) if self.x_test is not None else None
        self._run_dir = settings.run_dir
        self.session: RecordingSession | None = None
        self._extractor: Any = None
        self._ready = False
        self._fit_started = False
        self._opened = False
        self._epoch_index = 0
        self._specs: dict[str, LayerSpec] = {}
        self._layers: dict[str, Any] = {}
        self._weight_layers: dict[str, Any] = {}
        self._training: TrainingCall | None = None  # the fit running the hooks (see on_train_begin)

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

        Keras calls no hook when ``fit`` fails: the run stays with this recorder, whose next
        ``fit`` goes on recording, until another writer in this process wants it (a new
        recorder, ``epochscope.check_run(..., repair=True)``), which then takes it over, or this
        is called. Every epoch finished before the failure is on disk.
        """
        if self._training is not None:
            self._training.forget()
            self._training = None
        if self.session is not None:
            self.session.close()
            self.session = None

    def _abandon(self) -> None:
        """Release the run after a failed ``fit``, recording nothing more (its model is no finished epoch's)."""
        if self.session is not None:
            self.session.schedule.left_out = None
        self.close()

    def _open(self) -> RecordingSession:
        settings = self.settings
        if self._opened:  # overwrite=True starts one fresh run, which later fits continue
            settings = dataclasses.replace(settings, overwrite=False)
        self._opened = True
        return RecordingSession(
            settings,
            probe_labels=self.y_probe,
            test_labels=self.y_test,
            # Always given: the core fingerprints them, and keeps them only when settings say so.
            probe_inputs=_thumbnails(self.x_probe),
            test_inputs=_thumbnails(self.x_test) if self.x_test is not None else None,
            framework="keras",
            resume_help=self.resume_help,
            info={"model": self.model.name, "backend": keras.backend.backend(), "keras": keras.__version__,
                  # How Flatten orders a conv output: the network drawing reads dense weights after a conv so.
                  FLATTEN_ORDER_KEY: keras.config.image_data_format()},
        )

    # -- Keras hooks
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Look the layers up in the (now built) model and open the run."""
        self._whole_batches = None  # another fit, perhaps other data: its epochs' length is not known yet
        model = self.model
        self._specs = find_layer_specs(model, self.layer_names)
        layers = {layer.name: layer for layer in _all_layers(model)}
        self._layers = {name: layers[spec.layer] for name, spec in self._specs.items()}
        self._weight_layers = _weight_layers(model, self.settings.weights)
        self._extractor = layer_extractor(model, self._layers, self._specs)
        self._ready = True
        self._fit_started = False
        if self.session is None:
            self.session = self._open()
            log.info("recording %s of Keras model '%s' into %s", self.layer_names, model.name, self.session.path)
        # Keras calls no hook when fit fails: once this fit has ended without on_train_end, the next
        # writer of the run in this process takes it over instead of finding it locked for good.
        self._training = TrainingCall(keras.__name__)
        self.session.hand_over(self._training.ended, self._abandon)

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """At the first epoch of a ``fit``, record the model as epoch ``epoch`` (fit's
        ``initial_epoch``: the epochs it has finished) unless the run holds it; and refuse,
        before the epoch is trained, an epoch number the run already holds (unless replacing)."""
        self._epoch_index = epoch
        self._batches_done = 0
        self.session.schedule.left_out = None  # another epoch starts: the one left out before is not the last
        if self.session.schedule.by_step:
            self._step_epoch_begin(epoch)
            return
        if not self._fit_started:
            self._fit_started = True
            if epoch not in self.session.epochs:
                self.record(metrics={}, epoch=epoch)
        if epoch + 1 in self.session.epochs and not self.settings.replace_epochs:
            message = self.session.already_recorded(epoch + 1)
            self.close()  # Keras calls no hook when fit fails: release the run here
            raise ValueError(message)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Record the epoch that just ended as epoch ``epoch + 1`` (Keras counts from
        ``initial_epoch``), with Keras' logs as metrics (stored under one spelling by the core);
        every ``every_n_epochs``-th and the last one only, and numbered by its step in a run
        recorded every N steps. An epoch end left out while it may be the last (a callback listed
        after this one may still stop training) is kept for :meth:`on_train_end`."""
        schedule = self.session.schedule
        logs = metrics_now(logs or {})  # their values now: a later callback may change Keras' dict
        if schedule.by_step:
            step = self._global_step()
            # An epoch cut short (a callback set stop_training) ends at the fraction it reached
            steps = (self.params or {}).get("steps")
            done = fractional_epoch(epoch, step - self._epoch_start_step, steps) if steps is not None else None
            name = f"the end of epoch {epoch + 1} (step {step})"

            def take() -> int:
                return self._record_at(step, done if done is not None else float(epoch + 1), logs)
        else:
            if not self._ran_to_its_end():  # its model is no whole epoch's: not recorded as one
                steps = (self.params or {}).get("steps")
                why = "stop_training set" if getattr(self.model, "stop_training", False) else "the data ran out"
                self.session.cut_short(epoch + 1, f"{why}, {batches_part(self._batches_done, steps)}",
                                       self.cut_short_help + ("" if steps is not None else self.unknown_length_help))
                return
            name = f"epoch {epoch + 1}"

            def take() -> int:
                return self.record(metrics=logs, epoch=epoch + 1)
        if schedule.wants_epoch(epoch + 1, last=self._last_epoch(epoch)):
            take()
        else:
            schedule.left_out = LeftOut(name, self._weights_fingerprint(), take)

    #: Batches of the current epoch done (Keras' batch index + 1; past the epoch's length in a short last
    #: chunk of ``steps_per_execution``), counted in a run numbered by epoch too.
    _batches_done = 0

    #: How to record where training stops inside an epoch (an epoch cut short is not recorded in an epoch run).
    cut_short_help = ("To record the model where training stops inside an epoch, record every N optimizer steps "
                      "(Recorder(..., every_n_steps=N)): each record then keeps its fractional epoch")
    unknown_length_help = ("; for an epoch that ran to its end to be told from one stopped part-way, give fit "
                           "steps_per_epoch= (the data's batches)")

    def _ran_to_its_end(self) -> bool:
        """Whether Keras' epoch now ending ran through all of its batches: ``params["steps"]`` of them
        (``steps_per_epoch`` sets that number: such an epoch is whole). Keras leaves an epoch after any
        batch that sets ``stop_training`` and still calls ``on_epoch_end``; for data of unknown length (a
        generator without ``steps_per_epoch``) whether it was the last batch is told by the fit's
        previous whole epoch: one that ran as many batches is whole (an ``EarlyStopping`` listed before
        this callback sets ``stop_training`` after the epoch's last batch); without one, an epoch ending
        with ``stop_training`` set is not taken for whole."""
        steps = (self.params or {}).get("steps")
        if steps is not None:
            return self._batches_done >= steps
        if not getattr(self.model, "stop_training", False):
            self._whole_batches = self._batches_done  # the data ran out: this is the epoch's length
            return True
        return self._whole_batches is not None and self._batches_done >= self._whole_batches

    #: Batches of the fit's last epoch of unknown length that ended without ``stop_training`` (whole).
    _whole_batches: int | None = None

    def _last_epoch(self, epoch: int) -> bool:
        """Whether Keras' epoch ``epoch`` is known to be the last of this ``fit`` at its end: ``fit``'s
        ``epochs`` reached, or ``stop_training`` set (by the batches, or a callback listed before this one)."""
        planned = (self.params or {}).get("epochs")
        return bool(getattr(self.model, "stop_training", False)) or (planned is not None and epoch + 1 >= planned)

    def _weights_fingerprint(self) -> str:
        """:func:`~epochscope.record.schedule.fingerprint` of every weight of the model (non-trainable ones included)."""
        return fingerprint(keras.ops.convert_to_numpy(variable) for variable in self.model.weights)

    # -- records inside epochs (every_n_steps; see epochscope.record.schedule)
    def _global_step(self) -> int:
        """Optimizer steps done since training began: Keras' ``optimizer.iterations``, which a
        checkpoint restores with the optimizer, so a resumed ``fit`` continues the count."""
        return int(np.asarray(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))

    #: ``optimizer.iterations`` as the epoch began: the epoch's batches done are counted from it
    _epoch_start_step: int = 0

    def _step_epoch_begin(self, epoch: int) -> None:
        step = self._global_step()
        self._epoch_start_step = step
        if not self._fit_started:
            self._fit_started = True
            self.session.schedule.last_step = step
            message = self.session.step_already_recorded(step) if not self.settings.replace_epochs else None
            if message:
                self.close()  # Keras calls no hook when fit fails: release the run here
                raise ValueError(message)
            held = self.session.epochs
            if not held or step > held[-1]:
                self._record_at(step, float(epoch), {})

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Record every ``every_n_steps`` optimizer steps (a run recorded inside epochs); the
        epoch's last batch is left to ``on_epoch_end``, which records the same model with the
        epoch's validation metrics. ``logs`` are Keras' (its loss is the mean over the epoch so far)."""
        self._batches_done = batch + 1  # read at the epoch's end: was it cut short?
        if self.session is None or not self.session.schedule.by_step:
            return
        step = self._global_step()
        if not self.session.schedule.step_due(step):
            return
        steps = (self.params or {}).get("steps")
        # Batches done from the optimizer's count, not ``batch + 1``: with steps_per_execution=k Keras
        # passes each chunk's last index, past the epoch's end in a last chunk that is shorter
        done = step - self._epoch_start_step
        if steps is not None and done >= steps and self.session.schedule.wants_epoch(
                self._epoch_index + 1, last=self._last_epoch(self._epoch_index)):
            return
        self._record_at(step, fractional_epoch(self._epoch_index, done, steps), logs)

    def _record_at(self, step: int, epochs_done: float | None, metrics: Mapping[str, Any] | None) -> int:
        with self.session.start_step(step, epochs_done) as rec:
            self._capture(rec, "probe", self.x_probe)
            if self.x_test is not None:
                self._capture(rec, "test", self.x_test)
            return rec.commit(metrics=metrics, weights=_weight_arrays(self._weight_layers))

    #: What to do when the last epoch, left out by every_n_epochs, cannot be recorded at on_train_end.
    changed_help = ("Something changed the weights after that epoch's end: the optimizer's use_ema (its averaged "
                    "weights are swapped in when fit ends), or the on_train_end of a callback listed before the "
                    "Recorder (EarlyStopping(restore_best_weights=True)). List the Recorder after the callbacks that "
                    "stop training (then it knows the epoch is the last when it ends) and before those that change "
                    "the weights, or give fit epochs= a multiple of every_n_epochs")

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """Record the last epoch trained if ``every_n_epochs`` left it out (training stopped by a
        callback listed after this one), while the weights are still that epoch's; release the run."""
        try:
            if self.session is not None:
                record_left_out(self.session.schedule, self._weights_fingerprint, self.changed_help)
        finally:
            self.close()

    # -- capture
    def record(self, metrics: Mapping[str, Any] | None = None, epoch: int | None = None) -> int:
        """Capture the model now as ``epoch`` (default: the run's next) and commit it; returns the epoch.

        Called by the hooks; call it yourself only to record outside ``fit``.
        """
        if not getattr(self, "_ready", False):
            raise RuntimeError("the recorder has no model yet: pass it to model.fit(callbacks=[...]) first")
        if self.session is None:
            self.session = self._open()
        with self.session.start_epoch(epoch) as rec:
            self._capture(rec, "probe", self.x_probe)
            if self.x_test is not None:
                self._capture(rec, "test", self.x_test)
            return rec.commit(metrics=metrics, weights=_weight_arrays(self._weight_layers))

    def _capture(self, rec: EpochRecording, split: str, x: Any) -> None:
        n = _num_examples(x, f"{split} x")
        sequences = {name for name, layer in self._layers.items() if _is_sequence_layer(layer)}
        channels_last = {name: _is_channels_last(layer) for name, layer in self._layers.items()}
        batch_size = self.settings.batch_size
        for start in range(0, n, batch_size):
            batch = _take(x, slice(start, start + batch_size))
            size = _num_examples(batch, f"{split} x")
            if self._extractor is None:  # a subclassed model, no layers: its own outputs
                outputs = self.model.predict_on_batch(batch)
                prediction = outputs.get("logits", _first_leaf(outputs)) if isinstance(outputs, Mapping) \
                    else _first_leaf(outputs)
                rec.add_batch(split, start, {}, np.asarray(prediction), size=size)
                continue
            outputs = self._extractor.predict_on_batch(batch)  # a dict: each output by its name
            layer_outputs = {}
            for name in self._layers:
                array = np.asarray(outputs[name])
                # A 3-D output of a layer without a data_format is (N, T, E) tokens: left as it is.
                if not (name in sequences and array.ndim == 3):
                    array = _channels_first(array, channels_last[name])
                layer_outputs[name] = array
            rec.add_batch(split, start, layer_outputs, np.asarray(outputs[_PREDICTION]), size=size,
                          sequences={name for name in sequences if layer_outputs[name].ndim == 3},
                          token_mask=_token_mask(batch))
