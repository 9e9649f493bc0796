"""2-D maps of recorded layers across epochs (the embedder). Public entry: :func:`epochscope.embed`."""
