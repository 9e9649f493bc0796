"""Record a Hugging Face model fine-tuned with ``transformers.Trainer``: one callback.

Users import it as ``from epochscope.transformers import Recorder``. A ``PreTrainedModel`` is
a ``torch.nn.Module``, so the capture itself is the PyTorch recorder's (forward hooks on the
named modules, eval mode, no gradients, the token reduction honouring the probe's
``attention_mask``, predictions from the output's ``logits``); this adapter tokenizes the
probe, decides when to record, which metrics to keep and which process writes.

When the Trainer calls what (transformers 4.40 to 5.x, read from ``Trainer._inner_training_loop``):
``on_train_begin`` after a checkpoint's weights and ``TrainerState`` are restored; per epoch
``on_epoch_begin``, the steps, ``on_epoch_end``, and then, as the flow callback decided at
``on_epoch_end`` (``control.should_log``/``should_evaluate``/``should_save``), the training
loss's ``on_log``, the evaluation (its ``on_log``, then ``on_evaluate``) and ``on_save``.
The model does not change between ``on_epoch_end`` and the next epoch's first step, so the
epoch is captured once its metrics are known: at ``on_evaluate`` when an evaluation follows,
else at the epoch's last ``on_log`` or ``on_save``, else at once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._optional import require, require_all

# Before the PyTorch recorder is imported: without torch it would name the torch extra, and the
# transformers extra is the one install that brings both.
require_all(("torch", "transformers"), extra="transformers", purpose="recording Hugging Face Trainer runs")

from ..run import open_run  # noqa: E402
from .probe import select_texts  # noqa: E402
from .settings import RecordSettings, settings_from_options, with_options_signature  # noqa: E402
from .torch import Recorder as TorchRecorder  # noqa: E402
from .torch import _to_numpy, find_modules, find_weights, select_torch_examples  # noqa: E402
from .training_call import TrainingCall  # noqa: E402

torch = require("torch", extra="transformers", purpose="recording Hugging Face Trainer runs")
hf = require("transformers", extra="transformers", purpose="recording Hugging Face Trainer runs")

__all__ = ["FIRST_TOKEN_MODEL_TYPES", "Recorder", "default_tokens", "default_weights"]

log = logging.getLogger("epochscope")

#: Encoder families whose sequence classifiers read the first token ([CLS], ``<s>``): their
#: ``...ForSequenceClassification`` models are recorded with ``tokens="first"`` by default.
FIRST_TOKEN_MODEL_TYPES = frozenset({
    "albert", "bert", "camembert", "deberta", "deberta-v2", "distilbert", "electra", "ernie", "mpnet", "roberta",
    "xlm-roberta",
})

# Keys of the Trainer's log history that are not metrics of the epoch.
_NOT_METRICS = ("epoch", "step", "loss", "total_flos")
# A whole epoch number in TrainerState.epoch (a float: epoch + steps done / steps per epoch).
_WHOLE = 1e-6


def default_tokens(model: Any) -> str:
    """The token reduction used when ``tokens=`` is not given: ``"first"`` (the [CLS] token,
    which the classifier reads) for a ``...ForSequenceClassification`` model of an encoder
    family in :data:`FIRST_TOKEN_MODEL_TYPES`, else ``"mean"`` over the real tokens (those
    whose ``attention_mask`` is non-zero)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if type(model).__name__.endswith("ForSequenceClassification") and model_type in FIRST_TOKEN_MODEL_TYPES:
        return "first"
    return "mean"


def default_weights(model: Any) -> tuple[str, ...] | None:
    """The weights recorded when ``weights=`` is not given: the Linear layers of the model's
    classification head, in the order the forward pass applies them, when they are known to
    form a chain (each one's output the next one's input), so the network drawing, which
    infers the chain from the recorded layers' shapes, draws the model's real wiring:

    - ``<base>.pooler.dense`` (or ``<base>.pooler`` itself, ALBERT) -> ``classifier``: BERT-like
      models pool the first token through a dense layer, the classifier reads the pooled state;
    - ``pre_classifier`` -> ``classifier`` (DistilBERT);
    - ``classifier.dense`` -> ``classifier.out_proj`` (RoBERTa, XLM-R, ELECTRA, CamemBERT);
    - else a lone Linear ``classifier`` or ``score`` (the head of decoder classifiers).

    ``None`` (no weights) when the model has none of these. Every Linear layer of a
    transformer (``weights="auto"``) would chain by their shapes (query -> key -> value ...)
    where the model does not: the drawing would show wiring the model does not have.
    """
    modules = dict(model.named_modules())

    def linear(name: str) -> bool:
        return isinstance(modules.get(name), torch.nn.Linear)

    def chained(first: str, second: str) -> bool:
        return linear(first) and linear(second) and modules[first].out_features == modules[second].in_features

    base = getattr(model, "base_model_prefix", "") or ""
    for pooler in (f"{base}.pooler.dense", f"{base}.pooler"):
        if base and chained(pooler, "classifier"):
            return (pooler, "classifier")
    for first, second in (("pre_classifier", "classifier"), ("classifier.dense", "classifier.out_proj")):
        if chained(first, second):
            return (first, second)
    for name in ("classifier", "score"):
        if linear(name):
            return (name,)
    return None


def _model_labels(model: Any) -> tuple[str, ...] | None:
    """The model's class names in the order of its label ids (``config.id2label``), or ``None``
    when it names none of its own (transformers' default ``LABEL_0``, ``LABEL_1``, ...)."""
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    try:
        ids = sorted(int(i) for i in id2label)
    except (TypeError, ValueError):
        return None
    if not ids or ids != list(range(len(ids))):
        return None
    names = tuple(str(id2label[i] if i in id2label else id2label[str(i)]) for i in ids)
    return None if names == tuple(f"LABEL_{i}" for i in ids) else names


def _check_head(model: Any) -> None:
    """Refuse a head whose outputs are not one score per class: epochscope draws classes, and
    the argmax of a regression's one output or of a multi-label head's scores is not a class."""
    config = getattr(model, "config", None)
    problem = getattr(config, "problem_type", None)
    sequence_classifier = type(model).__name__.endswith("ForSequenceClassification")
    if problem == "regression" or (sequence_classifier and problem is None and getattr(config, "num_labels", 2) == 1):
        raise ValueError("model: a regression head (num_labels=1 or problem_type='regression') has no classes to draw "
                         "and its one output is no class prediction; epochscope records classifiers: give the model "
                         "num_labels >= 2 (single-label classification)")
    if problem == "multi_label_classification":
        raise ValueError("model: problem_type='multi_label_classification' gives each example several classes and "
                         "epochscope draws one class per example; record a single-label classifier "
                         "(problem_type='single_label_classification')")


def _check_not_multi_hot(y: Any, what: str) -> None:
    """Refuse multi-hot label rows, which the shared label encoding would read as one-hot (argmax)."""
    arr = _to_numpy(y)
    if arr.ndim == 2 and arr.shape[1] > 1 and np.issubdtype(arr.dtype, np.number):
        binary = np.isin(arr, (0, 1)).all()
        if binary and not np.all(arr.sum(axis=1) == 1):
            raise ValueError(f"{what}: rows of 0/1 with other than exactly one 1 are multi-label targets; epochscope "
                             "draws one class per example: pass one class index per example")


def _class_names_for(model: Any, settings: RecordSettings, labels: list[np.ndarray]) -> tuple[str, ...] | None:
    """The class names the run uses with ``model``: the given ``class_names``, else the
    model's ``config.id2label`` names, so a class index means the model's label id; for
    integer labels of a model that names none, ``"0"`` .. ``"k-1"`` for its ``num_labels``
    outputs (classes no probe label uses included).

    String labels without ``class_names`` are looked up in ``config.id2label``; when it does
    not name them, which index the model gives each string is unknown (sorting them could
    swap classes and the recorded accuracy), so they are refused."""
    names = _model_labels(model)
    if settings.class_names is not None:
        given = tuple(settings.class_names)
        if names is not None and set(given) == set(names) and given != names:
            raise ValueError(f"class_names: {list(given)} name the model's classes in another order than its "
                             f"config.id2label, {list(names)}; a class index is the model's label id: pass them in "
                             "that order (or leave class_names out)")
        return settings.class_names
    strings = sorted({str(v) for y in labels for v in np.asarray(y).ravel().tolist()} if any(
        np.asarray(y).dtype.kind in "USO" for y in labels) else set())
    if strings:
        if names is None or not set(strings) <= set(names):
            known = "" if names is None else f" (config.id2label names {list(names)[:10]})"
            raise ValueError(f"probe labels: strings {strings[:5]} but the model's config.id2label does not name them"
                             f"{known}, so their label ids are unknown; pass class_names=[...] in the order of the "
                             "model's label ids, or the integer labels your dataset gives the Trainer")
        return names
    # Integer labels (or one-hot rows) are the model's label ids: its names when it has them for every id.
    highest = max(int(y.max()) if y.ndim == 1 else y.shape[1] - 1 for y in labels)
    if names is not None and highest < len(names):
        return names
    # Unnamed: one class per output of the model ("0".."k-1"), also those no probe label uses,
    # so a prediction of such a class is one of the run's classes.
    outputs = getattr(getattr(model, "config", None), "num_labels", None)
    if isinstance(outputs, int) and not isinstance(outputs, bool) and outputs > highest + 1:
        return tuple(str(i) for i in range(outputs))
    return None


def _warn_left_padding(x: Any, layers: Sequence[str]) -> None:
    """Warn when ``tokens="first"`` meets left-padded inputs: the recorded token is each
    example's first real one ([CLS]), while a BERT-like classifier reads position 0, which
    left padding makes a padding token; the layer then is not what the classifier reads."""
    mask = x.get("attention_mask") if isinstance(x, Mapping) else None
    if mask is None or not layers:
        return
    padded = int((_to_numpy(mask)[:, 0] == 0).sum())
    if padded:
        log.warning("%d probe examples are padded on the left: tokens='first' records each one's first real token "
                    "([CLS]), but a BERT-like classifier reads position 0, here padding; pad on the right "
                    "(tokenizer.padding_side='right') for the layer the classifier reads", padded)


def _whole_epoch(value: float | None) -> int | None:
    """``TrainerState.epoch`` as a whole epoch number, or ``None`` in the middle of an epoch."""
    value = 0.0 if value is None else float(value)
    return int(round(value)) if abs(value - round(value)) < _WHOLE else None


def _upcoming_epoch(value: float | None) -> int:
    """The number the epoch now beginning will end with, from ``TrainerState.epoch`` at its start
    (the previous epoch's end: the Trainer updates it inside the epoch). After an epoch cut short
    (``should_epoch_stop`` at 1.5) the Trainer's loop goes on with its next index, which ends at 3.0:
    the number is the next whole one after the cut, not 2 (checked against the run before training).

    >>> _upcoming_epoch(None), _upcoming_epoch(2.0), _upcoming_epoch(1.5), _upcoming_epoch(2.0000001)
    (1, 3, 3, 3)
    """
    value = 0.0 if value is None else float(value)
    return int(math.ceil(value - _WHOLE)) + 1


def _last_epoch(epoch: int, state: Any, control: Any = None) -> bool:
    """Whether the finished ``epoch`` is known to be the last whole one of training: the Trainer's
    ``num_train_epochs`` or ``max_steps`` reached, ``max_steps`` falling inside the next epoch (which
    is then cut short, and not recorded), or ``control.should_training_stop`` set."""
    planned, max_steps = getattr(state, "num_train_epochs", 0), getattr(state, "max_steps", 0)
    step = int(getattr(state, "global_step", 0) or 0)
    # optimizer steps of a whole epoch, from the whole epochs done (the Trainer keeps no count of them)
    per_epoch = step // epoch if epoch > 0 else 0
    return (bool(getattr(control, "should_training_stop", False))
            or (bool(planned) and epoch >= planned)
            or (bool(max_steps) and (step >= max_steps or (per_epoch > 0 and step + per_epoch > max_steps))))


def _why_cut_short(args: Any, state: Any, control: Any) -> str:
    """Why the Trainer left an epoch part-way, in its own terms."""
    max_steps = getattr(args, "max_steps", -1) or -1
    if max_steps > 0 and state.global_step >= max_steps:
        return f"max_steps={max_steps} reached"
    for flag in ("should_training_stop", "should_epoch_stop"):
        if getattr(control, flag, False):
            return f"control.{flag} set"
    return "the Trainer left it early"


def epoch_metrics(history: Sequence[Mapping[str, Any]], end_step: int, loss_from_step: int,
                  window_start: int | None = None) -> dict[str, Any]:
    """The metrics of the epoch that ended at global step ``end_step`` (its steps are
    ``loss_from_step + 1 .. end_step``), from the Trainer's ``state.log_history`` entries
    logged during it (``history``).

    - ``loss``: the mean training loss of the epoch's logged steps. Each logged ``loss`` is
      the Trainer's mean over the steps since its previous log (the first one since
      ``window_start``, the step of the last log before the epoch; default ``loss_from_step``);
      the windows that lie inside the epoch are averaged, each weighted by its steps. A window
      that began in an earlier epoch (a ``logging_steps`` that does not divide the epoch, or
      one longer than it) holds other epochs' losses and is left out: exactly the epoch's mean
      with ``logging_strategy="epoch"`` or a ``logging_steps`` dividing the epoch, the mean of
      the part logged inside it otherwise, no ``loss`` when no window lies inside it.
    - every other number logged *at* ``end_step`` (the evaluation of the epoch's model:
      ``eval_loss``, ``eval_accuracy``, ...; ``learning_rate``, ``grad_norm``): an evaluation
      of an earlier step measured another model and is left out.

    The names are the Trainer's; the recording core gives them the common spelling
    (``eval_loss`` -> ``val_loss``). The summary ``train()`` logs at its end
    (``train_runtime``, ``train_loss`` over every epoch) is not an epoch's metric.

    >>> epoch_metrics([{"loss": 1.0, "step": 2}, {"loss": 0.5, "step": 6}, {"eval_loss": 0.7, "step": 6}], 6, 0)
    {'eval_loss': 0.7, 'loss': 0.6666666666666666}
    >>> epoch_metrics([{"loss": 1.0, "step": 5}, {"loss": 0.5, "step": 8}], 8, 4, window_start=3)
    {'loss': 0.5}
    """
    metrics: dict[str, Any] = {}
    total = steps = 0.0
    previous = loss_from_step if window_start is None else window_start
    for entry in history:
        if "train_runtime" in entry:
            continue
        step = entry.get("step")
        if step is None:
            continue
        if "loss" in entry and step > previous:
            if previous >= loss_from_step:  # the window lies inside the epoch
                total += float(entry["loss"]) * (step - previous)
                steps += step - previous
            previous = step
        if step == end_step:
            metrics.update({k: v for k, v in entry.items() if k not in _NOT_METRICS})
    if steps:
        metrics["loss"] = total / steps
    return metrics


def _is_texts(x: Any, what: str = "probe") -> bool:
    """Whether ``x`` is a list (tuple, array) of texts; one holding texts and other things is refused."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "US":
            return True
        if x.dtype != object:
            return False
        x = x.ravel().tolist()
    if not isinstance(x, (list, tuple)) or not any(isinstance(t, str) for t in x):
        return False
    wrong = next((i for i, t in enumerate(x) if not isinstance(t, str)), None)
    if wrong is not None:
        raise TypeError(f"{what}: expected one text (str) per example, got {type(x[wrong]).__name__} at index {wrong}; "
                        "pass a string for every example (\"\" for an empty one)")
    return True


def _tensor_inputs(x: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Tokenized inputs as a dict of arrays: lists of token ids (a tokenizer called without
    ``return_tensors``) become arrays; ragged ones (no padding) are refused."""
    out = {}
    for key, value in x.items():
        if isinstance(value, (list, tuple)):
            try:
                value = np.asarray(value)
            except ValueError:
                value = np.asarray(value, dtype=object)
            if value.dtype == object or value.ndim < 2:
                raise ValueError(f"{what}: inputs[{key!r}] holds sequences of different lengths; pad them to one length: "
                                 "tokenizer(texts, padding=True, truncation=True, return_tensors='pt')")
        out[key] = value
    return out


def _tokenized(texts: list[str], tokenizer: Any, max_length: int, what: str) -> dict[str, Any]:
    if tokenizer is None:
        raise TypeError(f"{what}: texts need a tokenizer; pass tokenizer=AutoTokenizer.from_pretrained(...) (or the "
                        "tokenizer the Trainer uses), or give the tokenized inputs, e.g. tokenizer(texts, ...)")
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"{what}: text {i} holds {text[err.start:err.end]!r}, which UTF-8 cannot encode (a lone "
                             "surrogate) and a tokenizer cannot read; clean it, e.g. "
                             "text.encode('utf-8', 'replace').decode()") from err
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v for k, v in dict(encoded).items() if hasattr(v, "shape")}


def _inputs(probe_x: Any, test_x: Any, texts: Any, test_texts: Any, tokenizer: Any,
            max_length: int) -> tuple[Any, Any, Any, Any]:
    """``(probe inputs, test inputs, probe texts, test texts)``: texts are tokenized, tokenized
    inputs pass as they are. The probe's and the test set's texts are tokenized together, so
    both are padded to one length: a recorded layer has one shape per example."""
    split_texts = []
    for x, given, what, name in ((probe_x, texts, "probe", "texts"), (test_x, test_texts, "test", "test_texts")):
        if _is_texts(x, what) and given is not None:
            raise ValueError(f"{what}: the examples are texts already; leave {name} out (it is for tokenized inputs)")
        split_texts.append([str(t) for t in x] if _is_texts(x, what) else None)
    probe_texts, test_texts_given = split_texts
    if probe_texts is not None and test_texts_given is not None:
        joint = _tokenized(probe_texts + test_texts_given, tokenizer, max_length, "probe")
        n = len(probe_texts)
        return ({k: v[:n] for k, v in joint.items()}, {k: v[n:] for k, v in joint.items()}, probe_texts,
                test_texts_given)
    out_x = []
    for x, tokens, what in ((probe_x, probe_texts, "probe"), (test_x, test_texts_given, "test")):
        if tokens is not None:
            out_x.append(_tokenized(tokens, tokenizer, max_length, what))
        else:  # a BatchEncoding is a UserDict, not a dict: passed on as keyword inputs
            out_x.append(_tensor_inputs(x, what) if isinstance(x, Mapping) else x)
    return (out_x[0], out_x[1], probe_texts if probe_texts is not None else texts,
            test_texts_given if test_texts_given is not None else test_texts)


class _TransformersCapture(TorchRecorder):
    """The PyTorch recorder, naming transformers as the framework in the manifest."""

    framework = "transformers"
    resume_help = ("the Trainer counts epochs from its checkpoint's TrainerState: to continue this run, "
                   "trainer.train(resume_from_checkpoint=...) from the checkpoint of its last epoch ({last}); a new "
                   "training from scratch goes in a new run_dir (or pass overwrite=True)")


class Recorder(hf.TrainerCallback):
    """A ``transformers.TrainerCallback`` that records chosen layers, predictions, weights and
    metrics of a model fine-tuned with ``Trainer``, at epoch 0 and after every epoch.

    **Epochs** follow ``state.epoch``: the model as training starts is recorded as epoch
    ``state.epoch`` (0, or *k* after ``trainer.train(resume_from_checkpoint=...)`` from a
    checkpoint saved after *k* epochs) unless the run holds it, then every finished epoch as
    ``state.epoch`` at its end. A checkpoint from the middle of an epoch holds no finished
    epoch: nothing is recorded until the epoch ends, and an epoch cut short (``max_steps``,
    ``control.should_training_stop`` or ``should_epoch_stop`` set in its middle) is not
    recorded: a warning says so. An epoch the run already holds (a new training that counts from 0
    again, or a resume from an earlier checkpoint) is refused before it is trained, unless
    ``replace_epochs=True``. With ``every_n_epochs=N`` the last epoch trained is recorded
    too: when its metrics are known if the Trainer already says it is the last (its
    ``num_train_epochs`` or ``max_steps`` reached, ``control.should_training_stop`` set by an
    ``EarlyStoppingCallback`` listed before the recorder), else at the Trainer's last log,
    before ``load_best_model_at_end`` loads other weights.

    **Layers** are module names of ``model.named_modules()``: ``"bert.encoder.layer.1"``
    (an encoder layer), ``"bert.pooler"`` (the pooled [CLS] state, the classifier's input
    after dropout), ``"bert.embeddings"``. A sequence output ``(examples, tokens, features)``
    is stored reduced over its tokens (``tokens=``): by default the first token for an
    encoder classifier (:func:`default_tokens`), else the mean over the real tokens; the
    probe's ``attention_mask`` says which tokens are real. The manifest records the
    reduction of each layer. Predictions are the argmax of the model's ``logits``.
    **Weights**: by default those of the classification head (:func:`default_weights`), whose
    chain the network drawing shows as the model wires it.

    **Metrics** come from the Trainer's log history (:func:`epoch_metrics`): the epoch's mean
    training loss as ``loss``, the evaluation run at the epoch's end as ``val_loss``,
    ``val_accuracy`` (``eval_<name>`` -> ``val_<name>``), ``learning_rate``, ``grad_norm``.

    **Processes**: under distributed training every process checks the layer names, only
    the main one (``state.is_world_process_zero``) captures and writes.

    Parameters
    ----------
    layers : module names whose outputs are recorded (``[]``: predictions, weights, metrics).
    probe : ``(texts, labels)`` with ``tokenizer=`` (the texts are kept in the run and shown
        on hover in the report), or ``(inputs, labels)`` with already tokenized inputs (a
        dict such as ``{"input_ids": ..., "attention_mask": ...}`` of tensors or arrays);
        labels as integers or strings, a class index being the model's label id: without
        ``class_names`` the names are the model's ``config.id2label`` (unless transformers'
        default ``LABEL_k``), and strings it does not name are refused at ``on_train_begin``.
        A regression or multi-label head is refused: its outputs are not one class per example.
    run_dir : folder of the run; created, or resumed (appended to) when it holds one.
    test : optional ``(texts or inputs, labels)``, also recorded every epoch.
    tokenizer : turns texts into the model's inputs (called as ``tokenizer(texts,
        padding=True, truncation=True, max_length=max_length, return_tensors="pt")``).
    max_length : tokens kept per text.
    texts, test_texts : the texts of tokenized inputs (one per example), kept for the hover.
    **options : the settings every recorder shares (``class_names``, ``weights`` (default: the
        head's, see :func:`default_weights`; ``"auto"``: every Linear layer),
        ``probe_size``, ``batch_size``, ``reduce``, ``max_width``, ``reduced_width``,
        ``tokens``, ``seed``, ``resume``, ``overwrite``, ``replace_epochs``, ...), as for
        :class:`epochscope.torch.Recorder`.

    Raises ``TypeError``/``ValueError`` for a malformed probe when made; unknown layer names
    at ``on_train_begin``, before anything is trained.

    Example::

        from epochscope.transformers import Recorder

        recorder = Recorder(layers=["bert.pooler"], probe=(texts, labels), tokenizer=tokenizer,
                            run_dir="runs/sst2", class_names=["negative", "positive"])
        trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                          compute_metrics=accuracy, callbacks=[recorder])
        trainer.train()
    """

    @with_options_signature
    def __init__(self, layers: Sequence[str], probe: tuple[Any, Any], run_dir: str, test: tuple[Any, Any] | None = None,
                 *, tokenizer: Any = None, max_length: int = 128, texts: Sequence[str] | None = None,
                 test_texts: Sequence[str] | None = None, **options: Any) -> None:
        super().__init__()
        settings = settings_from_options(run_dir, layers, options, who="Recorder")
        self._start(probe, test, settings, tokenizer=tokenizer, max_length=max_length, texts=texts,
                    test_texts=test_texts, auto_tokens="tokens" not in options, auto_weights="weights" not in options)

    @classmethod
    def from_settings(cls, probe: tuple[Any, Any], settings: RecordSettings, test: tuple[Any, Any] | None = None, *,
                      tokenizer: Any = None, max_length: int = 128, texts: Sequence[str] | None = None,
                      test_texts: Sequence[str] | None = None) -> Recorder:
        """A callback from settings already built (their ``tokens`` is used as it is)."""
        recorder = cls.__new__(cls)
        hf.TrainerCallback.__init__(recorder)
        recorder._start(probe, test, settings, tokenizer=tokenizer, max_length=max_length, texts=texts,
                        test_texts=test_texts, auto_tokens=False, auto_weights=False)
        return recorder

    def _start(self, probe: Any, test: Any, settings: RecordSettings, *, tokenizer: Any, max_length: int,
               texts: Any, test_texts: Any, auto_tokens: bool, auto_weights: bool) -> None:
        if settings.every_n_steps is not None:  # records inside epochs: the PyTorch, Keras and Lightning recorders
            raise ValueError(f"every_n_steps: this recorder records once an epoch (every_n_epochs works), got "
                             f"every_n_steps={settings.every_n_steps}; leave it out, or record inside epochs with "
                             "epochscope.torch.Recorder's rec.step() in a loop of your own")
        if not isinstance(probe, (tuple, list)) or len(probe) != 2:
            raise TypeError(f"probe: expected a pair (texts or inputs, labels), got {type(probe).__name__}; pass "
                            "probe=(texts, labels) with tokenizer=..., or probe=(tokenizer(texts, ...), labels)")
        if test is not None and (not isinstance(test, (tuple, list)) or len(test) != 2):
            raise TypeError(f"test: expected a pair (texts or inputs, labels), got {type(test).__name__}; pass "
                            "test=(texts, labels)")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length: expected a positive whole number of tokens, got {max_length!r}; e.g. 128")
        x, xt, texts, test_texts = _inputs(probe[0], None if test is None else test[0], texts, test_texts, tokenizer,
                                           max_length)
        if test is not None:
            test = (xt, test[1])
        _check_not_multi_hot(probe[1], "probe labels")
        if test is not None:
            _check_not_multi_hot(test[1], "test labels")
        self.settings = settings
        # Checked and subset here, on every process, so a bad argument stops all of them alike.
        self._probe, self._test = select_torch_examples(settings, (x, probe[1]), test)
        self._texts, self._test_texts = select_texts(settings, _to_numpy(probe[1]), texts,
                                                     None if test is None else _to_numpy(test[1]), test_texts)
        self._auto_tokens = auto_tokens
        self._auto_weights = auto_weights
        self.recorder: TorchRecorder | None = None  # only ever set on the main process
        self._opened = False
        self._pending: int | None = None  # the epoch that ended and waits for its metrics
        self._history_from = 0  # log_history entries of the current epoch start here
        self._loss_from_step = 0
        self._window_start = 0  # the step of the Trainer's last loss log: its next logged loss is the mean from there
        self._training: TrainingCall | None = None  # the Trainer.train running the hooks (see on_train_begin)

    # -- lifetime
    @property
    def run_dir(self) -> str:
        return self.settings.run_dir

    @property
    def run(self):
        """The run opened for reading (see :class:`epochscope.Run`)."""
        return open_run(self.settings.run_dir)

    def close(self) -> None:
        """Release the run (its lock). Done when training ends, or when the recorder stops it.
        The Trainer calls no callback when training fails for another reason: the run then stays
        with this recorder, whose next ``train()`` goes on recording, until another writer in this
        process wants it (a new recorder), which takes it over, or this is called. Safe to call twice."""
        if self._training is not None:
            self._training.forget()
            self._training = None
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    # -- the Trainer's events
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Check the layer names; on the main process open the run and record the starting model."""
        if model is None:
            raise TypeError("Recorder.on_train_begin: the Trainer passed no model; use it as "
                            "Trainer(..., callbacks=[recorder])")
        _check_head(model)
        find_modules(model, self.settings.layers)
        labels = [self._probe[1]] + ([] if self._test is None else [self._test[1]])
        class_names = _class_names_for(model, self.settings, [_to_numpy(y) for y in labels])
        if not self._auto_weights:
            find_weights(model, self.settings.weights)
        self._history_from = len(state.log_history)
        self._loss_from_step = self._window_start = state.global_step  # the Trainer's loss window restarts here too
        self._pending = None
        if not state.is_world_process_zero:
            return
        if self.recorder is None or self.recorder.model is not model:
            self.close()
            settings = dataclasses.replace(self.settings, probe_size=None,  # the subset was drawn in _start
                                           overwrite=self.settings.overwrite and not self._opened,
                                           class_names=class_names)
            if self._auto_tokens:
                settings = dataclasses.replace(settings, tokens=default_tokens(model))
            if self._auto_weights:
                settings = dataclasses.replace(settings, weights=default_weights(model))
            if settings.tokens == "first":
                _warn_left_padding(self._probe[0], settings.layers)
            self._opened = True
            self.recorder = _TransformersCapture.from_settings(model, self._probe, settings, test=self._test,
                                                               texts=self._texts, test_texts=self._test_texts)
            log.info("recording %s of %s into %s (sequences: tokens=%r; weights: %s)", list(settings.layers),
                     type(model).__name__, settings.run_dir, settings.tokens, settings.weights)
        # The Trainer calls no callback when training fails: once this train() has ended without
        # on_train_end, the next writer of the run in this process takes it over instead of finding it locked.
        self._training = TrainingCall(hf.__name__)
        self.recorder.session.hand_over(self._training.ended, self._abandon)
        epoch = _whole_epoch(state.epoch)
        if epoch is not None and epoch not in self.recorder.epochs:
            try:
                self.recorder._record(epoch, None, counters={"step": state.global_step})
            except BaseException:
                self._abandon()  # training stops with this error: the run is not left locked
                raise

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Refuse, before the epoch is trained, an epoch number the run already holds (unless replacing)."""
        self._flush(state)
        message = None
        if self.recorder is not None:
            self.recorder.session.schedule.left_out = None  # another epoch starts: the one left out is not the last
            epoch = _upcoming_epoch(state.epoch)
            if epoch in self.recorder.epochs and not self.settings.replace_epochs:
                message = self.recorder.session.already_recorded(epoch)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Only the main process knows the run: all of them stop alike.
            box = [message]
            torch.distributed.broadcast_object_list(box, src=0)
            message = box[0]
        if message:
            self._abandon()  # the Trainer tells callbacks nothing of the error: release the run for the next try now
            raise ValueError(message)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Mark the finished epoch; capture it now unless a log, evaluation or save follows."""
        epoch = _whole_epoch(state.epoch)
        if epoch is None:  # the epoch was cut short: its model is no whole epoch's
            if self.recorder is not None:
                done = float(state.epoch) - math.floor(float(state.epoch))
                self.recorder.session.cut_short(
                    math.floor(float(state.epoch)) + 1,
                    f"{_why_cut_short(args, state, control)}, after {round(100 * done)} % of its batches",
                    self.cut_short_help)
            return
        self._pending = epoch
        if not (control.should_log or control.should_evaluate or control.should_save):
            self._flush(state, control)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not control.should_evaluate:  # no evaluation follows this log
            self._flush(state, control)
        if isinstance(logs, Mapping) and "train_runtime" in logs:
            # The Trainer's last log, after the last epoch and before load_best_model_at_end loads other weights.
            self._record_left_out()

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        self._flush(state, control)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush(state, control)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        try:
            self._flush(state, control)
            self._record_left_out()
        finally:
            self.close()

    #: How to have the model where training stops recorded (an epoch cut short is not recorded).
    cut_short_help = ("This recorder records whole epochs: give max_steps a multiple of an epoch's optimizer steps, or "
                      "record inside epochs with epochscope.torch.Recorder(..., every_n_steps=N) in a loop of your own")

    #: What to do when the last epoch, left out by every_n_epochs, cannot be recorded when training ends.
    changed_help = ("The weights changed before the Trainer's last log (a callback listed before the Recorder "
                    "changed them); list the Recorder before it, or give num_train_epochs a multiple of "
                    "every_n_epochs")

    def _record_left_out(self) -> None:
        """Record the last epoch trained if ``every_n_epochs`` left it out at its end (an
        ``EarlyStoppingCallback`` listed after this one stopped training), main process only."""
        if self.recorder is None:
            return
        try:
            self.recorder._record_left_out(self.changed_help)
        except BaseException:
            self._abandon()  # training stops with this error: the run is not left locked
            raise

    def _abandon(self) -> None:
        """Release the run on an error, recording nothing more."""
        if self.recorder is not None:
            self.recorder.session.schedule.left_out = None
        self.close()

    def _flush(self, state: Any, control: Any = None) -> None:
        """Record the pending epoch with its metrics (main process only); every ``every_n_epochs``-th,
        and the last of training (known from ``state`` and ``control``; see :func:`_last_epoch`)."""
        epoch, self._pending = self._pending, None
        if epoch is None:
            return
        history = state.log_history[self._history_from:]
        self._history_from = len(state.log_history)
        metrics = epoch_metrics(history, state.global_step, self._loss_from_step, self._window_start)
        self._loss_from_step = state.global_step
        logged = [e["step"] for e in history if "loss" in e and e.get("step") is not None and "train_runtime" not in e]
        self._window_start = max(logged, default=self._window_start)
        if self.recorder is not None:
            try:
                self.recorder._record(epoch, metrics, counters={"step": state.global_step},
                                      last=_last_epoch(epoch, state, control))
            except BaseException:
                self._abandon()  # training stops with this error: the run is not left locked
                raise
