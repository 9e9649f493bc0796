"""Readers for what the integrations write, independent of epochscope's writers."""

from __future__ import annotations

from pathlib import Path


class ProjectorReader:
    """TensorBoard's own projector plugin over a log directory, asked through its HTTP routes
    (what the projector page in the browser asks), without starting a server."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
        from tensorboard.plugins import base_plugin
        from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin

        mux = plugin_event_multiplexer.EventMultiplexer()
        mux.AddRunsFromDirectory(str(logdir))
        mux.Reload()
        provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
        context = base_plugin.TBContext(logdir=str(logdir), data_provider=provider, multiplexer=mux)
        self.apps = ProjectorPlugin(context).get_plugin_apps()

    def get(self, route: str, **query) -> bytes:
        from werkzeug.test import Client
        from werkzeug.wrappers import Response

        response = Client(self.apps[route], Response).get(route, query_string=query)
        assert response.status_code == 200, (route, query, response.data[:300])
        return response.data


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of every scalar in ``logdir``, read by TensorBoard's accumulator."""
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.util import tensor_util

    acc = pea.EventAccumulator(str(logdir), size_guidance={pea.TENSORS: 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        assert acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars", tag
        out[tag] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
    return out

