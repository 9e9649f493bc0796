"""Importers: write a run from checkpoints and logs that other tools saved."""
