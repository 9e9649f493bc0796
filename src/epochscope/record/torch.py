"""Record a PyTorch model: forward hooks by module name, one capture per epoch.

Users import it as ``from epochscope.torch import Recorder``. What is recorded, exactly:

- **The call.** A forward hook copies a module's output *when the module returns it*, so an
  in-place operation later in the forward pass (``ReLU(inplace=True)``, a residual
  ``out += identity``) cannot change what is stored. A module the forward pass calls more
  than once (one activation reused after every block, a weight-tied or recurrent cell) is
  refused with the number of calls, unless a call is chosen: ``"relu@2"`` (from 1).
- **The inputs** reach the model as given: integer and boolean inputs (token ids, masks)
  untouched; floating-point inputs in the model's floating dtype (its parameters'), so a
  float64, half or bfloat16 model gets its own precision and numpy's float64 arrays feed a
  float32 model. A dict of inputs is passed as keyword arguments, a tuple as positional ones.
- **The batch axis** of every output is checked. The modules whose layout PyTorch declares
  (``nn.RNN``/``LSTM``/``GRU``, ``nn.MultiheadAttention``, ``nn.Transformer*`` built with
  ``batch_first=False``, an RNN's ``h_n``/``c_n``) are turned batch-first before they are
  stored; a module inside one of them, whose layout nobody declares, is refused.
- **Sequences** ``(N, T, E)`` (outputs of those modules and of ``nn.Embedding``, and any
  3-D output whose second axis is the token axis of integer token-id inputs or of an
  ``attention_mask``) are stored reduced over their tokens (``tokens=``), honouring the
  inputs' ``attention_mask`` (non-zero: a real token) or ``src_key_padding_mask`` /
  ``key_padding_mask`` (true: padding).
- **Structures.** A module returning a tuple, dict, named tuple or Hugging Face
  ``ModelOutput`` records its first tensor, or the part named as ``"name[1]"`` /
  ``"name[last_hidden_state]"``; the model's predictions come from its ``logits`` when it
  has them, else from its first tensor.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import unknown_name_message
from .._optional import require
from ..run import open_run
from ..run.timeline import check_time_point, format_epochs
from .core import RecordingSession
from .layer_spec import LayerSpec, base_name, parse_layer_spec, path_text
from .probe import select_examples, select_texts
from .schedule import LeftOut, fingerprint, fractional_epoch, last_time, metrics_now, record_left_out
from .settings import RecordSettings, settings_from_options, with_options_signature

torch = require("torch", extra="torch", purpose="recording PyTorch models")
nn = torch.nn

__all__ = ["Recorder", "capture", "find_layer_specs", "find_modules", "find_weights", "model_prediction",
           "select_tensor", "select_torch_examples"]

log = logging.getLogger("epochscope")

_WEIGHT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
# Modules whose 3-D output is (N, C, L), channels first: never a sequence of tokens.
_CHANNEL_FIRST_1D = tuple(getattr(nn, name) for name in (
    "Conv1d", "ConvTranspose1d", "LazyConv1d", "LazyConvTranspose1d", "BatchNorm1d", "LazyBatchNorm1d", "InstanceNorm1d",
    "LazyInstanceNorm1d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "LPPool1d", "Dropout1d",
    "ConstantPad1d", "ReflectionPad1d", "ReplicationPad1d", "ZeroPad1d", "CircularPad1d", "Upsample") if hasattr(nn, name))
_TRANSFORMER_LAYERS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
_TRANSFORMER_STACKS = (nn.TransformerEncoder, nn.TransformerDecoder)
# Inputs that mark the real tokens of a sequence: (name, True when the value marks padding).
_MASK_INPUTS = (("attention_mask", False), ("src_key_padding_mask", True), ("key_padding_mask", True))


# --------------------------------------------------------------------------- inputs


def _to_tensor(x: Any, copy: bool = True) -> torch.Tensor:
    """A copy of the probe or test inputs, taken once: a view of the user's array or tensor
    would let a later in-place change (normalising, augmenting the training array it is a
    slice of) alter what later epochs record while the run keeps the first inputs.
    ``copy=False`` for a tensor that is indexed at once (indexing copies)."""
    if isinstance(x, torch.Tensor):
        return x.detach().clone() if copy else x.detach()
    return torch.tensor(np.asarray(x)) if copy else torch.as_tensor(np.asarray(x))


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _is_structure(x: Any) -> bool:
    return isinstance(x, Mapping) or (isinstance(x, tuple) and len(x) > 0
                                       and all(isinstance(v, (torch.Tensor, np.ndarray, Mapping, tuple)) for v in x))


def _map_inputs(x: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn`` on every array of an input: a tensor/array, a dict of them, or a tuple of them."""
    if isinstance(x, Mapping):
        return {k: _map_inputs(v, fn) for k, v in x.items()}
    if _is_structure(x):
        return tuple(_map_inputs(v, fn) for v in x)
    return fn(x)


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, Mapping):
        return [leaf for v in x.values() for leaf in _leaves(v)]
    if _is_structure(x):
        return [leaf for v in x for leaf in _leaves(v)]
    return [x]


def _count(x: Any, what: str) -> int:
    """Examples in an input: its length, or the common length of a dict's / tuple's arrays."""
    leaves = _leaves(x)
    sizes = {len(leaf) for leaf in leaves} if leaves else set()
    if len(sizes) != 1:
        raise ValueError(f"{what}: the input arrays hold different numbers of examples {sorted(sizes)}; "
                         "give one row per example in every array")
    return sizes.pop()


def _float_dtype(model: nn.Module) -> torch.dtype | None:
    """The floating dtype of the model's parameters (else buffers), which floating inputs are given in."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def _to_model(x: Any, device: torch.device, float_dtype: torch.dtype | None) -> Any:
    """The batch on the model's device; floating arrays in the model's floating dtype, others as given."""
    def move(t: torch.Tensor) -> torch.Tensor:
        dtype = float_dtype if float_dtype is not None and t.is_floating_point() else None
        return t.to(device=device, dtype=dtype, non_blocking=True)
    return _map_inputs(x, move)


def _call(model: nn.Module, batch: Any) -> Any:
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, tuple):
        return model(*batch)
    return model(batch)


def _token_info(batch: Any) -> tuple[int | None, tuple[str, np.ndarray] | None]:
    """The token count T of a batch of sequences and its mask of real tokens, when the inputs say.

    T is known from a mask input (``attention_mask``, ``src_key_padding_mask``,
    ``key_padding_mask``), from ``input_ids``, or from an integer (N, T) tensor of token ids.
    """
    if isinstance(batch, Mapping):
        for name, marks_padding in _MASK_INPUTS:
            mask = batch.get(name)
            if isinstance(mask, torch.Tensor) and mask.dim() == 2:
                m = mask.detach().cpu()
                if m.dtype == torch.bool or not m.is_floating_point():
                    real = ~(m != 0) if marks_padding else m != 0
                else:  # a float mask added to attention scores: 0 keeps a token, -inf drops it
                    real = m == 0 if marks_padding else m != 0
                return int(mask.shape[1]), (name, real.numpy())
        ids = batch.get("input_ids")
        if isinstance(ids, torch.Tensor) and ids.dim() == 2:
            return int(ids.shape[1]), None
        return None, None
    if isinstance(batch, tuple):
        return _token_info(batch[0]) if batch else (None, None)
    if isinstance(batch, torch.Tensor) and batch.dim() == 2 and not batch.is_floating_point() \
            and batch.dtype != torch.bool:
        return int(batch.shape[1]), None
    return None, None


def _thumbnails(x: Any) -> np.ndarray | dict[str, np.ndarray] | None:
    """The inputs as numpy for the core: it fingerprints them (a resume on other examples is
    refused) and keeps them for pictures when they are one numeric array float16 holds."""
    if isinstance(x, Mapping):
        parts = {str(k): _thumbnails(v) for k, v in x.items()}
        return {k: v for k, v in parts.items() if v is not None}
    if not isinstance(x, torch.Tensor):
        return None
    x = x.detach().cpu()
    return (x.float() if x.is_floating_point() else x).numpy()


# --------------------------------------------------------------------------- outputs


def _describe(value: Any, depth: int = 0) -> str:
    """A short description of a module's output: ``tuple of 2: [0] tensor (32, 6, 8), [1] ...``."""
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)}"
    if depth >= 2:
        return type(value).__name__
    if isinstance(value, Mapping):
        return f"{type(value).__name__} of {len(value)}: " + ", ".join(
            f"[{k}] {_describe(v, depth + 1)}" for k, v in list(value.items())[:6])
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of {len(value)}: " + ", ".join(
            f"[{i}] {_describe(v, depth + 1)}" for i, v in enumerate(value[:6]))
    return type(value).__name__


def _first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in ``value``, depth first (a tensor itself; a tuple's, list's, dict's items in order)."""
    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (tuple, list)) else ()
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def select_tensor(output: Any, path: Sequence[int | str], where: str) -> torch.Tensor:
    """The tensor to record from a module's output: the part at ``path`` (indices into tuples
    and lists, keys of dicts and ``ModelOutput``s, fields of named tuples), else (or then) the
    first tensor. Raises ``TypeError``/``ValueError`` describing what the module returns."""
    part = output
    for step in path:
        try:
            if isinstance(part, Mapping):
                part = part[step] if step in part else list(part.values())[step] if isinstance(step, int) else part[step]
            elif isinstance(part, (tuple, list)) and isinstance(step, int):
                part = part[step]
            elif isinstance(step, str):
                part = getattr(part, step)
            else:
                raise KeyError(step)
        except (KeyError, IndexError, AttributeError, TypeError):
            raise ValueError(f"{where}: no part [{step}] in what the module returns ({_describe(output)}); name a part "
                             "it has, e.g. [0] or [key]") from None
    found = _first_tensor(part)
    if found is None:
        what = _describe(output) if path else type(output).__name__
        raise TypeError(f"{where} returns {what}, not a tensor (nor a structure holding one); record a module whose "
                        "output is a tensor")
    return found


def model_prediction(result: Any) -> torch.Tensor:
    """The model's class scores: itself when a tensor, its ``logits`` (dict key, ``ModelOutput``
    or named-tuple field) when it has them, else its first tensor."""
    if isinstance(result, torch.Tensor):
        return result
    logits = result.get("logits") if isinstance(result, Mapping) else getattr(result, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    return select_tensor(result, (), "the model")


def _sequence_first(module: nn.Module) -> bool:
    """Whether PyTorch declares ``module``'s outputs sequence-first (built with ``batch_first=False``)."""
    if isinstance(module, (nn.RNNBase, nn.MultiheadAttention, nn.Transformer)):
        return not module.batch_first
    if isinstance(module, _TRANSFORMER_LAYERS):
        return not module.self_attn.batch_first
    if isinstance(module, _TRANSFORMER_STACKS):
        return len(module.layers) > 0 and _sequence_first(module.layers[0])
    return False


def _known_layout(module: nn.Module, path: tuple[int | str, ...]) -> tuple[int, bool] | None:
    """``(batch axis, is a token sequence)`` of a part of a module's output, where PyTorch declares it."""
    main = len(path) == 0 or path == (0,)
    if isinstance(module, nn.RNNBase):  # output; h_n / c_n are (layers x directions, N, H) either way
        return (1 if _sequence_first(module) else 0, True) if main else (1, False)
    if isinstance(module, nn.MultiheadAttention):  # attn_output; the attention weights are batch-first
        return (1 if _sequence_first(module) else 0, True) if main else (0, False)
    if isinstance(module, (*_TRANSFORMER_LAYERS, *_TRANSFORMER_STACKS, nn.Transformer)):
        return 1 if _sequence_first(module) else 0, True
    if isinstance(module, nn.Embedding):
        return 0, True
    return None


def find_layer_specs(model: nn.Module, names: Sequence[str]) -> dict[str, LayerSpec]:
    """What each name of ``layers`` asks for (see :mod:`epochscope.record.layer_spec`); an
    unknown name lists the module names that exist, close matches first."""
    modules = dict(model.named_modules())
    found = {}
    for name in names:
        spec = parse_layer_spec(name, lambda n: n in modules and bool(n))
        if spec is None:
            available = [n for n in modules if n]
            raise ValueError(unknown_name_message("layer", base_name(name), available)
                             + " (names from model.named_modules())")
        found[name] = spec
    _check_declared_layouts(model, found)
    return found


def find_modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """The module each name of ``layers`` hooks (``"relu@2"`` and ``"lstm[1]"`` name ``relu`` and
    ``lstm``); unknown names list the ones that exist."""
    modules = dict(model.named_modules())
    return {name: modules[spec.layer] for name, spec in find_layer_specs(model, names).items()}


def _check_declared_layouts(model: nn.Module, specs: Mapping[str, LayerSpec]) -> None:
    """Refuse a module inside a sequence-first module: its outputs are (T, N, ...) too, and no
    one declares which axis is the batch."""
    modules = dict(model.named_modules())
    outer = [n for n, m in modules.items() if n and _sequence_first(m)]
    for name, spec in specs.items():
        inside = next((o for o in outer if spec.layer.startswith(o + ".")), None)
        if inside is not None and _known_layout(modules[spec.layer], spec.path) is None:
            raise ValueError(
                f"layer '{name}' sits inside '{inside}', which is sequence-first (built with batch_first=False): its "
                f"outputs are (T, N, ...) and nothing declares which axis is the batch; record '{inside}' (stored "
                "batch-first) or a module PyTorch declares, or build it with batch_first=True")


# --------------------------------------------------------------------------- capture


def _snapshot(t: torch.Tensor) -> torch.Tensor:
    """A float32 copy of ``t`` on its device, made now: nothing the forward pass does later changes it."""
    if t.is_complex():
        raise TypeError("complex outputs cannot be recorded; record a module whose output is real")
    return t.detach().to(dtype=torch.float32, copy=True)


def _dense(t: torch.Tensor, tokens: int | None) -> torch.Tensor:
    """A nested tensor (what ``nn.TransformerEncoder``'s layers pass on for padded batches in
    eval mode) as the padded tensor the encoder itself returns: zeros at the padding, padded
    to the inputs' token count."""
    if not getattr(t, "is_nested", False):
        return t
    padded = t.to_padded_tensor(0.0)
    if tokens is not None and padded.dim() == 3 and padded.shape[1] < tokens:
        padded = t.to_padded_tensor(0.0, (padded.shape[0], tokens, padded.shape[2]))
    return padded


def _to_host(t: torch.Tensor) -> np.ndarray:
    """The model's output as numpy, in its own precision (half and bfloat16 widened exactly to float32)."""
    t = t.detach()
    if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return t.cpu().numpy()


class _Hooks:
    """Forward hooks that snapshot the chosen call of each recorded module, and count its calls."""

    def __init__(self, specs: Mapping[str, LayerSpec], modules: Mapping[str, nn.Module]) -> None:
        self.specs = specs
        self.by_module: dict[str, list[LayerSpec]] = {}
        for spec in specs.values():
            self.by_module.setdefault(spec.layer, []).append(spec)
        self.modules = {spec.layer: modules[name] for name, spec in specs.items()}
        self.calls = dict.fromkeys(self.by_module, 0)
        self.outputs: dict[str, torch.Tensor] = {}
        self.sequence: dict[str, bool | None] = {}

    def register(self) -> list[Any]:
        return [self.modules[layer].register_forward_hook(self._hook(layer)) for layer in self.by_module]

    def _hook(self, layer: str):
        specs = self.by_module[layer]

        def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
            self.calls[layer] += 1
            call = self.calls[layer]
            for spec in specs:
                if call != (spec.call or 1):
                    continue
                t = select_tensor(output, spec.path, f"layer '{spec.name}'")
                layout = _known_layout(module, spec.path)
                if layout is not None and layout[0] == 1 and t.dim() >= 2:
                    t = t.transpose(0, 1)  # declared sequence-first: stored batch-first
                self.outputs[spec.name] = _snapshot(t)
                self.sequence[spec.name] = None if layout is None else layout[1]
        return hook

    def reset(self) -> None:
        self.outputs.clear()
        for layer in self.calls:
            self.calls[layer] = 0

    def check_calls(self) -> None:
        """Every module called (the chosen call included), none ambiguous: else a ``ValueError``."""
        for layer, count in self.calls.items():
            for spec in self.by_module[layer]:
                if count == 0:
                    raise RuntimeError(f"layers ['{spec.name}'] were not called in the forward pass; record layers the "
                                       "model uses (in eval mode, under torch.no_grad)")
                if spec.call is None and count > 1:
                    raise ValueError(
                        f"layer '{spec.name}' was called {count} times in one forward pass (a module used more than once: "
                        "one activation after every block, a weight-tied or recurrent cell), so which output to record "
                        f"is ambiguous; record one call by its number, '{layer}@1' to '{layer}@{count}'"
                        f"{path_text(spec.path)} (counted from 1 in the order of the forward pass), or a module the "
                        "model calls once")
                if spec.call is not None and spec.call > count:
                    raise ValueError(f"layer '{spec.name}' asks for call {spec.call}, but the forward pass calls "
                                     f"'{layer}' {count} time{'s' if count > 1 else ''}; choose a call from 1 to {count}")

    def is_sequence(self, name: str, array: np.ndarray, tokens: int | None) -> bool:
        """A 3-D output is a token sequence when its module declares one, or when it is not a
        channels-first module and its second axis is the inputs' token axis."""
        if array.ndim != 3:
            return False
        known = self.sequence.get(name)
        if known is not None:
            return known
        if isinstance(self.modules[self.specs[name].layer], _CHANNEL_FIRST_1D):
            return False
        return tokens is not None and array.shape[1] == tokens


def capture(model: nn.Module, specs: Mapping[str, LayerSpec], modules: Mapping[str, nn.Module], x: Any, *,
            batch_size: int, device: torch.device, on_batch, float_dtype: torch.dtype | None = None) -> None:
    """Run ``model`` over ``x`` in eval mode without gradients, calling
    ``on_batch(start, size, {name: output ndarray}, model output ndarray, sequences, token_mask)``
    per batch (``sequences``: the names whose outputs are token sequences (N, T, E);
    ``token_mask``: ``(input name, (N, T) bool)`` or ``None``).

    Each module's output is copied when the module returns it. Hooks are registered here and
    removed in ``finally``, and every module's own training mode is restored (a BatchNorm the
    user froze in eval mode inside a model in train mode stays frozen), also when the forward
    pass raises.
    """
    hooks = _Hooks(specs, modules)
    n = _count(x, "inputs")
    # Per module, not model.train(was_training): that would unfreeze the modules the user keeps in eval mode.
    modes = [(module, module.training) for module in model.modules()]
    handles = hooks.register()
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, n, batch_size):
                hooks.reset()
                batch = _map_inputs(x, lambda t, start=start: t[start:start + batch_size])
                size = _count(batch, "inputs")
                batch = _to_model(batch, device, float_dtype)
                try:
                    result = _call(model, batch)
                except RuntimeError as err:
                    hint = _integer_input_hint(batch, err)
                    if hint is None:
                        raise
                    raise TypeError(hint) from err
                hooks.check_calls()
                tokens, mask = _token_info(batch)
                layer_arrays = {name: _dense(hooks.outputs[name], tokens).cpu().numpy() for name in specs}
                sequences = {name for name, a in layer_arrays.items() if hooks.is_sequence(name, a, tokens)}
                logits = _to_host(model_prediction(result))
                on_batch(start, size, layer_arrays, logits, sequences, mask)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training


def _integer_input_hint(batch: Any, err: RuntimeError) -> str | None:
    """The message for a forward pass that failed on a dtype because integer inputs (uint8
    images, say) reach a floating model as given, or ``None`` when that is not the cause."""
    text = str(err)
    if "dtype" not in text.lower() and "scalar type" not in text.lower():
        return None
    kinds = sorted({str(t.dtype).replace("torch.", "") for t in _leaves(batch)
                    if isinstance(t, torch.Tensor) and not t.is_floating_point() and t.dtype != torch.bool})
    if not kinds:
        return None
    return (f"the model's forward pass failed on inputs of dtype {', '.join(kinds)} ({text.splitlines()[0]}); "
            "integer inputs reach the model as given (token ids must stay ids), so give the probe and test inputs "
            "as your training loop feeds them, e.g. probe=(x.astype('float32') / 255, y)")


def _uncompiled(model: nn.Module) -> nn.Module:
    """The eager module inside a ``torch.compile``'d one (``OptimizedModule._orig_mod``), else ``model``."""
    optimized = getattr(getattr(torch, "_dynamo", None), "eval_frame", None)
    optimized = getattr(optimized, "OptimizedModule", None)
    while optimized is not None and isinstance(model, optimized):
        model = model._orig_mod
    return model


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


def _weights_fingerprint(model: nn.Module) -> str | None:
    """:func:`~epochscope.record.schedule.fingerprint` of every parameter and buffer of
    ``model`` (its ``state_dict``, bytes as stored); ``None`` when one cannot be read."""
    try:
        return fingerprint(t.detach().contiguous().reshape(-1).view(torch.uint8).cpu().numpy()
                           for t in model.state_dict().values() if isinstance(t, torch.Tensor))
    except (RuntimeError, TypeError, ValueError):  # a tensor without plain storage (meta, sparse, quantized...)
        return None


def select_torch_examples(settings: RecordSettings, probe: Any, test: Any = None):
    """:func:`~epochscope.record.probe.select_examples` for tensors or arrays, or a dict (keyword
    inputs) or tuple (positional inputs) of them; labels are moved to numpy."""
    return select_examples(settings, probe, test, labels=_to_numpy, count=_count,
                           take=lambda x, index: _map_inputs(x, lambda t: _to_tensor(t, copy=False)[torch.as_tensor(index)]))


class Recorder:
    """Records a PyTorch model's chosen layers, predictions and weights at every epoch.

    Parameters
    ----------
    model : the ``nn.Module`` being trained (any device, any floating dtype).
    layers : module names from ``model.named_modules()`` whose outputs are recorded
        (``[]``: predictions, weights and metrics only); ``"relu@2"`` records the second call
        of a module called several times, ``"lstm[1][0]"`` one part of a structured output.
    probe : ``(x, y)`` the fixed examples recorded every epoch: ``x`` a tensor or array, a
        dict of them (passed as keyword arguments: ``input_ids``, ``attention_mask``) or a
        tuple (positional arguments); labels as integers, one-hot rows or strings.
    run_dir : folder of the run; created, or resumed (appended to) when it holds one.
    test : optional ``(x_test, y_test)``, also recorded every epoch (laid onto the map).
    texts, test_texts : optional, one string per example of ``probe`` (as given, before any
        ``probe_size`` subset) and of ``test``: the sentences a text model reads, kept in the
        run so the report shows an example's text on hover (bounded; see
        :mod:`epochscope.run.texts`).
    **options : the settings every recorder shares, checked by
        :class:`~epochscope.record.settings.RecordSettings`: ``class_names``, ``weights``
        (``"auto"``: every Linear and Conv layer; or module or parameter names; or ``None``),
        ``probe_size``, ``batch_size`` (256), ``reduce``/``max_width``/``reduced_width``
        (layers wider than 2,048 values per example), ``tokens`` (sequence outputs:
        ``"mean"``, ``"first"``, ``"last"``, ``"none"``), ``keep_inputs``, ``seed``,
        ``resume``, ``overwrite`` (start a fresh run in ``run_dir``), ``replace_epochs``,
        ``binary_threshold``, ``on_disk_full`` (``"raise"`` or ``"skip"``), ``every_n_epochs``,
        ``every_n_steps`` and ``steps_per_epoch`` (records inside epochs, counted by :meth:`step`).

    Raises ``TypeError``/``ValueError`` for a wrong argument (a layer name that
    ``model.named_modules()`` lacks lists the names that exist, close matches first),
    :class:`~epochscope.RunLockedError` while another process writes ``run_dir``,
    :class:`~epochscope.RunError` when ``run_dir`` holds a run of other examples or classes,
    and :class:`~epochscope.StorageError` when the run cannot be written; nothing is recorded then.

    What exactly is recorded (the call, dtypes, batch axis, sequences, structures): see the
    module docstring and docs/recording.md.

    Example::

        rec = Recorder(model, layers=["hidden"], probe=(x, y), run_dir="runs/mnist")
        rec.record(0)                           # the untrained model
        for epoch in range(1, 11):
            train_one_epoch(model)
            rec.record(epoch, metrics={"loss": loss, "accuracy": acc})
        rec.close()

    Records inside epochs (every 50 optimizer steps, each with its fractional epoch)::

        rec = Recorder(model, ["hidden"], (x, y), "runs/steps", every_n_steps=50, steps_per_epoch=len(loader))
        rec.record(0)
        for epoch in range(1, 11):
            for xb, yb in loader:
                loss = train_step(xb, yb)
                rec.step(metrics={"loss": loss})   # counts the step; records at steps 50, 100, ...
            rec.record(epoch)                      # the epoch end, at the current step
    """

    #: Written into the manifest; an adapter that records through this class names itself here.
    framework = "torch"

    @with_options_signature
    def __init__(self, model: nn.Module, layers: Sequence[str], probe: tuple[Any, Any], run_dir: str,
                 test: tuple[Any, Any] | None = None, *, texts: Sequence[str] | None = None,
                 test_texts: Sequence[str] | None = None, **options: Any) -> None:
        self._start(model, probe, test, settings_from_options(run_dir, layers, options, who="Recorder"),
                    texts=texts, test_texts=test_texts)

    @classmethod
    def from_settings(cls, model: nn.Module, probe: tuple[Any, Any], settings: RecordSettings,
                      test: tuple[Any, Any] | None = None, *, texts: Sequence[str] | None = None,
                      test_texts: Sequence[str] | None = None) -> Recorder:
        """A recorder for ``model`` from settings already built (one settings object, several recorders)."""
        recorder = cls.__new__(cls)
        recorder._start(model, probe, test, settings, texts=texts, test_texts=test_texts)
        return recorder

    def _start(self, model: nn.Module, probe: Any, test: Any, settings: RecordSettings, *,
               texts: Sequence[str] | None = None, test_texts: Sequence[str] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}; pass the network "
                            "being trained")
        self.settings = settings
        # A torch.compile'd model runs its compiled graph, which never calls hooks added after it was compiled:
        # the capture runs the eager module inside it (the same parameters) and layers keep their own names.
        model = _uncompiled(model)
        self.model = model
        self.specs = find_layer_specs(model, settings.layers)
        modules = dict(model.named_modules())
        self.modules = {name: modules[spec.layer] for name, spec in self.specs.items()}
        self._weights = find_weights(model, settings.weights)
        (x, y), test_pair = select_torch_examples(settings, probe, test)
        # The texts of the examples kept (the probe_size subset drawn from the labels as given).
        probe_texts, kept_test_texts = select_texts(settings, _to_numpy(probe[1]), texts,
                                                    None if test is None else _to_numpy(test[1]), test_texts)
        # Kept in the dtype given: the model's floating dtype is applied per batch (see _to_model).
        self.x_probe = _map_inputs(x, _to_tensor)
        self.x_test = _map_inputs(test_pair[0], _to_tensor) if test_pair is not None else None
        self.batch_size = settings.batch_size
        # Inputs always go to the core: it fingerprints them and keeps them only when settings say so.
        self.session = RecordingSession(
            settings,
            probe_labels=y,
            test_labels=None if test_pair is None else test_pair[1],
            probe_inputs=_thumbnails(self.x_probe),
            test_inputs=_thumbnails(self.x_test) if self.x_test is not None else None,
            framework=self.framework,
            info={"model": type(model).__name__},
            resume_help=self.resume_help,
            probe_texts=probe_texts,
            test_texts=kept_test_texts,
        )
        self._start_clock()

    #: How to continue a run, in this framework's terms (see RecordingSession's resume_help).
    resume_help = "the next epoch to record is {next} (rec.record() without a number records it)"

    # -- the step count (records inside epochs; see epochscope.record.schedule)
    def _start_clock(self) -> None:
        """Where training is: the run's last record in a step run (a resume continues after it), else the start."""
        last = last_time(self.session.writer)
        self._step = last[0] if last else 0
        self._epoch: int | None = None if last and last[1] is None else (int(last[1]) if last else None)
        spe = self.settings.steps_per_epoch
        # Batches done in the current epoch, from the last record's fraction (when its epoch is known).
        self._epoch_step = last[0] - round((last[1] - int(last[1])) * spe) if last and last[1] is not None and spe \
            else self._step
        if not last and self.session.epochs:
            self._epoch = self.session.epochs[-1]
        # A new run recorded every N steps starts where training starts: step 0, epoch 0 (so the first
        # epoch's records have their fraction even without rec.record(0)).
        self._fresh = not self.session.epochs
        if self._fresh and self.session.schedule.by_step:
            self._epoch = 0

    #: ``(step, epoch)`` of this recorder's last :meth:`record` in a step run (two epoch ends at one step are refused).
    _epoch_end_at: tuple[int, int] | None = None

    @property
    def global_step(self) -> int:
        """Optimizer steps counted so far (:meth:`step`), from the run's last record on a resume."""
        return self._step

    # -- lifetime
    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        # Training failed: the last epoch every_n_epochs left out is kept all the same when the model
        # is still the one it ended with (the failure came before the next batch changed it)
        self._close(self.changed_help if exc_type is None else self.failed_help)

    #: What to do when training failed after an epoch every_n_epochs left out, and the model changed since.
    failed_help = ("Training failed during the next epoch; to keep every finished epoch through a failure, record "
                   "every epoch (every_n_epochs=1) or save checkpoints")

    #: What to do when the last epoch, left out by every_n_epochs, cannot be recorded at close (the model changed).
    changed_help = ("Call rec.close() right after the last rec.record(...), before the model is changed (best weights "
                    "loaded...), or record the last epoch with rec.record(epoch, last=True)")

    def close(self) -> None:
        """Release the run (its lock). Every recorded epoch is already on disk.

        With ``every_n_epochs=N``, the last epoch given to :meth:`record` is the last of
        training: when ``every_n_epochs`` left it out, it is recorded now, provided the model's
        weights are still the ones it ended with (else a warning says it is not). Leaving the
        ``with`` block on an exception does the same: the epoch is kept when the failure came
        before the model changed. Safe to call twice.
        """
        self._close(self.changed_help)

    def _close(self, advice: str) -> None:
        """:meth:`close`, with ``advice`` for a left-out epoch the model changed since."""
        try:
            self._record_left_out(advice)
        finally:
            self.session.close()

    def _record_left_out(self, advice: str) -> int | None:
        """Record the last epoch end left out by ``every_n_epochs`` (the end of training; see
        :func:`~epochscope.record.schedule.record_left_out`)."""
        return record_left_out(self.session.schedule, lambda: _weights_fingerprint(self.model), advice)

    @property
    def run_dir(self) -> str:
        """The run's folder (``run_dir``)."""
        return self.session.path

    @property
    def next_epoch(self) -> int:
        """The epoch number :meth:`record` uses when called without one."""
        return self.session.next_epoch

    @property
    def epochs(self) -> list[int]:
        """The epochs the run holds."""
        return self.session.epochs

    @property
    def run(self):
        """The run opened for reading (see :class:`epochscope.Run`)."""
        return open_run(self.session.path)

    # -- recording
    def record(self, epoch: int | None = None, metrics: Mapping[str, Any] | None = None, *,
               step: int | None = None, last: bool = False) -> int | None:
        """Capture the model now as ``epoch`` (default: the next one) and commit it to disk.

        With ``every_n_epochs=N`` only every N-th epoch (and the run's first record) is
        captured at once; the others return ``None``, and the last of them is recorded by
        :meth:`close` (the last epoch of training is always recorded; ``last=True`` records this
        one now, whatever its number). With ``every_n_steps`` the record is numbered by
        the steps counted with :meth:`step` (or ``step``, the optimizer steps done, e.g. the
        step a checkpoint saved when training resumes from it) and keeps ``epoch`` as its epochs
        done; it returns that step. A run's last record is not recorded again: calling
        ``record(epoch, step=...)`` at the step it holds (training resumed from there) only sets
        the count; an earlier step is refused unless ``replace_epochs=True``.

        ``metrics`` (loss, accuracy, val_loss, val_accuracy, ...) are stored with the epoch
        under one spelling (:func:`epochscope.metric_names.normalise_metrics`: ``train_loss``
        -> ``loss``, ``val_acc`` -> ``val_accuracy``; a metric named like one epochscope
        writes, such as ``epoch``, is kept as ``user_epoch``); ``probe_accuracy`` and
        ``test_accuracy`` are added from the predictions. Returns the epoch.

        An epoch the run already holds raises ``ValueError`` (it says how to go on), unless
        the recorder was made with ``replace_epochs=True``: then this epoch and every later
        one are replaced.
        """
        return self._record(epoch, metrics, step=step, last=last)

    def step(self, metrics: Mapping[str, Any] | None = None, *, step: int | None = None) -> int | None:
        """Count one optimizer step (call it after ``optimizer.step()``) and record the model
        when the count reaches a multiple of ``every_n_steps``; returns the step recorded, else ``None``.

        ``step``: the number of optimizer steps done, given instead of counting (after resuming
        from a checkpoint that saved it). The record's fractional epoch is the epochs passed to
        :meth:`record` plus the steps since the last one over ``steps_per_epoch``; without
        ``steps_per_epoch`` it is unknown (the pictures then use a step axis). ``metrics`` (the
        batch's loss, ...) are stored with the record.

        Raises ``ValueError`` when the recorder was made without ``every_n_steps``.
        """
        if not self.session.schedule.by_step:
            raise ValueError("step(): this recorder records once an epoch; pass every_n_steps=N (and "
                             "steps_per_epoch=len(train_loader)) to Recorder to record every N optimizer steps")
        if step is None:
            self._step += 1
        else:
            self._set_step(step)
        if not self.session.schedule.step_due(self._step):
            return None
        done = fractional_epoch(self._epoch, self._step - self._epoch_step, self.settings.steps_per_epoch)
        if done is None and self._epoch is not None and self.settings.steps_per_epoch:
            self.session.warn_once("steps_per_epoch", "step %d is %d steps into epoch %d, more than steps_per_epoch=%d: "
                                   "the records inside this epoch keep no fractional epoch (the pictures use a step "
                                   "axis); pass steps_per_epoch=len(train_loader)", self._step,
                                   self._step - self._epoch_step, self._epoch + 1, self.settings.steps_per_epoch)
        return self._capture_record(self.session.start_step(self._step, done), metrics, None)

    def _set_step(self, step: int) -> None:
        """Set the step count to ``step`` (optimizer steps done); going back before the run's last
        record is refused unless ``replace_epochs`` (then the records from there on are replaced)."""
        step = check_time_point(step, None)[0]
        message = self.session.step_already_recorded(step)
        if message and not self.settings.replace_epochs:
            raise ValueError(message)
        if self.session.schedule.last_step is not None and step <= self.session.schedule.last_step:
            self.session.schedule.last_step = step - 1  # count the multiples of N again from here
        self._step = step

    def _record(self, epoch: int | None, metrics: Mapping[str, Any] | None,
                counters: Mapping[str, float | int] | None = None, step: int | None = None,
                last: bool = False) -> int | None:
        """Record ``epoch`` as :meth:`record` says; ``last``: the last epoch of training, recorded
        whatever ``every_n_epochs`` says. An epoch end it leaves out is kept (with the model's
        fingerprint) until a later record or the end of training (:meth:`_record_left_out`)."""
        schedule = self.session.schedule
        if step is not None and not schedule.by_step:
            raise ValueError("record(step=...): this recorder records once an epoch, numbered by epoch; pass "
                             "every_n_steps=N to Recorder to number records by optimizer step")
        if epoch is None:  # the epoch after the last one given (recorded or left out by every_n_epochs)
            if schedule.by_step and self._fresh:
                epoch = 0 if not self.session.epochs and self._step == 0 else self._epoch + 1
            else:
                epoch = self._epoch + 1 if self._epoch is not None else (0 if schedule.by_step else self.session.next_epoch)
        epoch = int(epoch)
        first = not self.session.epochs
        if schedule.by_step:
            if step is not None:
                self._set_step(step)
            ended = self._epoch_end_at
            if ended is not None and ended[0] == self._step and ended[1] != epoch:
                # No step counted between two epoch ends: rec.step() is not called, and this record
                # would silently replace the last one (the model of epoch ended[1]) under its step.
                raise ValueError(f"record(epoch={epoch}): no optimizer step was counted since the record of epoch "
                                 f"{ended[1]} (both at step {self._step}); call rec.step() after each "
                                 "optimizer.step(), or pass record(epoch, step=optimizer steps done)")
            self._epoch_end_at = (self._step, epoch)
            done = self._epochs_done_at_end(epoch)
            self._epoch, self._epoch_step = epoch, self._step
            held = self.session.epochs
            if held and self._step == held[-1] and self._step != self.session._last_step:
                return None  # the run's last record is this model (training resumed from it): nothing to add
            name = f"the end of epoch {epoch} (step {self._step})"
            start = functools.partial(self.session.start_step, self._step, done)
        else:
            self._epoch = epoch
            name = f"epoch {epoch}"
            start = functools.partial(self.session.start_epoch, epoch)
        metrics = metrics_now(metrics)  # their values now, if the record is taken later

        def take() -> int:
            return self._capture_record(start(), metrics, counters)

        if first or schedule.wants_epoch(epoch, last=last):
            return take()
        schedule.left_out = LeftOut(name, _weights_fingerprint(self.model), take)
        return None

    def _epochs_done_at_end(self, epoch: int) -> float:
        """The epochs done when ``record(epoch)`` ends epoch ``epoch`` in a step run: ``epoch``, unless
        ``steps_per_epoch`` says fewer steps were counted since the last epoch end than the epochs
        between them hold (a loop that broke out of the epoch, then recorded it as its body does):
        then the fraction training reached, so the record does not claim an epoch it did not finish,
        and a warning says so."""
        spe, last = self.settings.steps_per_epoch, self._epoch
        steps = self._step - self._epoch_step
        if not spe or last is None or epoch <= last or steps >= (epoch - last) * spe:
            return float(epoch)
        reached = last + steps / spe
        self.session.warn_once(f"cut-short:{epoch}", "record(%d) at step %d comes %d optimizer steps after the end of "
                               "epoch %d, fewer than steps_per_epoch=%d: epoch %d was cut short, and the record is at "
                               "epoch %s, where training is, not at its end. If every epoch has fewer steps, pass "
                               "steps_per_epoch=the optimizer steps of an epoch", epoch, self._step, steps, last, spe,
                               epoch, format_epochs(reached))
        return reached

    def _capture_record(self, recording: Any, metrics: Mapping[str, Any] | None,
                        counters: Mapping[str, float | int] | None) -> int:
        device = _model_device(self.model)
        float_dtype = _float_dtype(self.model)
        with recording as rec:
            splits = [("probe", self.x_probe)] + ([("test", self.x_test)] if self.x_test is not None else [])
            for split, x in splits:
                def on_batch(start, size, acts, logits, sequences, mask, split=split):
                    rec.add_batch(split, start, acts, logits, size=size, sequences=sequences, token_mask=mask)
                capture(self.model, self.specs, self.modules, x, batch_size=self.batch_size, device=device,
                        float_dtype=float_dtype, on_batch=on_batch)
            weights = {name: p.detach().float().cpu().numpy() for name, p in self._weights.items()}
            return rec.commit(metrics=metrics, weights=weights, counters=counters)
