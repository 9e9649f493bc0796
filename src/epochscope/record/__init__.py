"""Recording: capture layer outputs, predictions and weights during training into a run.

The framework adapters (:mod:`epochscope.record.torch`, ``.keras``, ``.lightning``) only
run the model; everything else (labels, reduction of wide layers, writing) lives in
:mod:`epochscope.record.core`, which imports no framework.
"""
