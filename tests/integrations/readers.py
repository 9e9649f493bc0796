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



def wandb_records(path: Path):
    """The records of a W&B run file (``run-*.wandb``), parsed here: a LevelDB-style log (7-byte
    header ``:W&B`` + magic + version, 32 KiB blocks of chunks: crc32c, length, type) of W&B's
    own protobuf ``Record`` messages. Independent of the code that wrote it (W&B's Go core)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # the rest of a block too small for a chunk header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # zero padding
            pos += left
            continue
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def wandb_history(path: Path) -> list[dict]:
    """The logged rows of a W&B run file: ``[{"_step": 0, "key": value, ...}, ...]`` (media as their JSON dicts)."""
    import json

    rows = []
    for record in wandb_records(path):
        if record.WhichOneof("record_type") == "history":
            row: dict = {}
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                value = json.loads(item.value_json)
                parts = key.split("/")
                # nested media fields come as "prefix/name/_type" ...: gather them per media key
                if len(parts) > 2 and parts[-1] in ("_type", "path", "sha256", "size", "width", "height", "format",
                                                    "caption"):
                    row.setdefault("/".join(parts[:-1]), {})[parts[-1]] = value
                else:
                    row[key] = value
            rows.append(row)
    return rows
