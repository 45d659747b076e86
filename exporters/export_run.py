"""The state an export passes between its steps, and the small helpers several steps share."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fcnedge.exporters.onnx_meta import embed_meta
from fcnedge.exporters.verify import compare, verify_shapes
from fcnedge.meta import ModelMeta
from fcnedge.specs import ExportSpec, TileSpec


@dataclass
class ExportRun:
    """State passed between steps, and the report that is written beside the model."""

    spec: ExportSpec
    meta: ModelMeta
    work: Path
    report: dict[str, Any] = field(default_factory=dict)
    proto: Any = None
    upsampling_nodes: list[str] | None = None

    def step(self, name: str, t0: float) -> None:
        self.report.setdefault("steps_s", {})[name] = round(time.perf_counter() - t0, 3)


def save_proto(proto: Any, path: Path) -> None:
    import onnx

    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def parity(run: ExportRun, model: Any, path: Path, threads: int) -> list[Any]:
    """torch vs ORT on the three verification shapes, through the runtime's tiler at the export tile size."""
    shapes = verify_shapes(run.spec.export_shape, run.meta.stride)
    tile = TileSpec(size=run.spec.export_shape, overlap=0.25)
    return compare(model, path, run.meta, shapes=shapes, tile=tile, threads=threads)


def embed_into_file(path: Path, run: ExportRun) -> None:
    import onnx

    proto = onnx.load(str(path))
    embed_meta(proto, run.meta)
    stamp(proto, run)
    onnx.save(proto, str(path))


def stamp(proto: Any, run: ExportRun) -> None:
    proto.producer_name = "fcnedge"
    from fcnedge._version import __version__

    proto.producer_version = __version__
