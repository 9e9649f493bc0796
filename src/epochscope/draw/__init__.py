"""Renderers: pictures drawn from a run's arrays. They never import a framework or a model."""
