"""Recording: capture layer outputs, predictions and weights during training into a run.

The framework adapters (:mod:`epochscope.record.torch`, ``.keras``, ``.lightning``) only
run the model. What every recorder is told lives in one frozen
:class:`~epochscope.record.settings.RecordSettings`; everything else (checking the probe,
labels, reduction of wide layers, metric names, writing) lives in
:mod:`epochscope.record.probe` and :mod:`epochscope.record.core`, which import no framework.
The contract an adapter keeps is written at the top of :mod:`epochscope.record.core`.
"""
