"""Where epochscope meets the tools people already use: notebooks, TensorBoard, Weights & Biases.

One module per tool; each imports its tool only when called (through
:func:`epochscope._optional.require`), so a missing tool fails with the ``pip install`` to run,
and ``import epochscope`` loads none of them:

- :mod:`.notebook` — the report inline in Jupyter (:func:`show_report`, an ``<iframe srcdoc>``);
  needs nothing beyond a notebook.
- :mod:`.tensorboard` — :func:`~.tensorboard.export_tensorboard`: the embedding projector's
  files and the metrics as scalars (extra ``tensorboard``; also ``epochscope export tensorboard``).
- :mod:`.wandb` — :func:`~.wandb.log_run`: the time-lapse, network animation and report logged
  to a W&B run (extra ``wandb``).

This room reads runs and composes the maps, the pictures and the report; it never records,
imports or checks a run (``tests/test_architecture.py``).
"""
