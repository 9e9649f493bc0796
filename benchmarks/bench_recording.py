"""Recording overhead: one epoch of the MNIST CNN with and without the recorder, side by side.

    python benchmarks/bench_recording.py [--train-size 60000] [--probe 5000] [--rounds 2] [--out FILE]
                                         [--mnist PATH]   # full MNIST elsewhere than ../shared/data (a worktree)

Targets (issue 2): the recorder adds at most 5% to a training epoch, and a capture costs at
most 1.25x a bare forward pass over the probe set (the part no recorder can avoid).
Epochs with and without recording alternate, so load on the machine hits both sides alike.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_mnist, machine, median, table, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--probe", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2, help="epochs on each side")
    parser.add_argument("--captures", type=int, default=5, help="forward-vs-capture repetitions")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--mnist", type=Path, default=None, help="full MNIST (mnist.npz) when it is not in ../shared/data")
    args = parser.parse_args()

    import torch

    from epochscope.models import mnist_cnn
    from epochscope.record.probe import stratified_indices
    from epochscope.torch import Recorder

    if args.mnist is not None:
        from epochscope.datasets import load_dataset

        data = load_dataset("mnist", path=args.mnist)
    else:
        data = load_mnist()
    x = torch.as_tensor(data.x_train[: args.train_size])
    y = torch.as_tensor(data.y_train[: args.train_size])
    idx = stratified_indices(data.y_train, args.probe, seed=0)
    xp, yp = data.x_train[idx], data.y_train[idx]
    torch.manual_seed(0)
    model = mnist_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_epoch() -> None:
        model.train()
        for batch in torch.randperm(len(x)).split(100):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()

    xp_t = torch.as_tensor(xp)

    def bare_forward() -> None:  # what any capture must do: the probe through the model, no gradients
        model.eval()
        with torch.no_grad():
            for start in range(0, len(xp_t), rec.batch_size):
                model(xp_t[start:start + rec.batch_size])

    with tempfile.TemporaryDirectory() as tmp:
        rec = Recorder(model, ["hidden"], probe=(xp, yp), run_dir=Path(tmp) / "run", weights="auto")
        rec.record(0)  # first capture pays one-off set-up (files, manifest)
        plain, recorded, records = [], [], []
        for _ in range(args.rounds):
            plain.append(timed(train_epoch))
            t_train = timed(train_epoch)
            t_rec = timed(rec.record)
            recorded.append(t_train + t_rec)
            records.append(t_rec)
        forwards, captures = [], []
        for _ in range(args.captures):
            forwards.append(timed(bare_forward))
            captures.append(timed(rec.record))
        rec.close()

    epoch, epoch_rec = median(plain), median(recorded)
    fwd, cap = median(forwards), median(captures)
    rows = [
        ["training epoch, no recorder", epoch, ""],
        ["training epoch + record", epoch_rec, f"{epoch_rec / epoch:.3f}x epoch ({100 * (epoch_rec / epoch - 1):+.1f}%)"],
        ["record alone (in those epochs)", median(records), f"{100 * median(records) / epoch:.1f}% of an epoch"],
        ["bare forward over the probe", fwd, ""],
        ["capture (record) over the probe", cap, f"{cap / fwd:.2f}x the bare forward"],
    ]
    text = (f"Recording overhead, MNIST CNN, {len(x)} training digits, probe {len(xp)}, layer `hidden` + all weights; "
            f"median of {args.rounds} epochs / {args.captures} captures ({machine()})\n\n"
            + table(["what", "seconds", "ratio"], rows))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
