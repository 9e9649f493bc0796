"""The self-contained interactive HTML report. Public entry: :func:`epochscope.report`."""
