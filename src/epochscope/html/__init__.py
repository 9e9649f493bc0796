"""The self-contained interactive HTML report. It draws what it is given:
:func:`epochscope.html.report.write_report` takes a run and maps already computed;
:func:`epochscope.report` (the pipeline) embeds a layer first, then calls it."""
