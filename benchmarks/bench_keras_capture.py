"""Keras recorder: one capture against a bare ``model.predict`` over the same examples, side by side.

    KERAS_BACKEND=torch python benchmarks/bench_keras_capture.py [--probe 1000] [--test 1000] [--rounds 3]

The model is the classic MNIST CNN of examples/keras_mnist.py, recording ``hidden``. A
capture runs one forward pass per batch through an extractor that shares the model's layers
(it yields the layer and the prediction together), then writes float16 rows into the run;
``model.predict`` is the forward pass no recorder can avoid. Target: ratio at most 1.25,
as for the PyTorch recorder (benchmarks/bench_recording.py). The two sides alternate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "examples"))
from _common import median, table, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probe", type=int, default=1000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import keras
    import numpy as np
    from keras_mnist import mnist_cnn

    from epochscope import load_dataset
    from epochscope.keras import Recorder

    data = load_dataset("mnist-5k")
    x, y = np.moveaxis(data.x_train[:args.probe], 1, -1), data.y_train[:args.probe]
    xt, yt = np.moveaxis(data.x_test[:args.test], 1, -1), data.y_test[:args.test]
    model = mnist_cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    with tempfile.TemporaryDirectory() as tmp:
        rec = Recorder(["hidden"], probe=(x, y), test=(xt, yt), run_dir=tmp)
        model.fit(x[:100], y[:100], epochs=1, verbose=0, callbacks=[rec])  # builds the extractor; warms up
        rec.on_train_begin()  # reopen the run that fit released
        bare, capture = [], []
        for _ in range(args.rounds):
            bare.append(timed(lambda: (model.predict(x, batch_size=500, verbose=0),
                                       model.predict(xt, batch_size=500, verbose=0))))
            capture.append(timed(rec.record))
        rec.close()
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} cores; "
          f"{args.probe} probe + {args.test} test digits, median of {args.rounds}\n")
    print(table(["bare model.predict", "rec.record() capture + write", "ratio"],
                [[f"{median(bare):.2f} s", f"{median(capture):.2f} s", median(capture) / median(bare)]]))


if __name__ == "__main__":
    main()
