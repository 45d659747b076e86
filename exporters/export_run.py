"""The state an export passes between its steps, and the small helpers several steps share."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fcnedge.exporters.onnx_meta import embed_meta
from fcnedge.exporters.verify import compare, verify_shapes
from fcnedge.meta import ModelMeta
from fcnedge.specs import ExportSpec, TileSpec


@dataclass
class ExportReport:
    """What an export did, step by step: returned by ``fcnedge.exporters.pipeline.run`` and written beside the model
    as ``<model>.report.json`` (:meth:`to_json`; a step that did not run leaves its field None and out of the file).

    Attributes:
        output, quantize, opset, export_shape, versions, total_s: what was written, how, with which packages.
        exporter: ``torchscript`` or ``dynamo``.
        nodes, bytes: graph sizes and file sizes after each step.
        simplifier, simplifier_failure: which simplifier ran (onnxsim, or ORT's own passes) and why onnxsim did not.
        rewrite: the exact rewrites of the upsampling (forms tried, chosen, timings).
        runtime_upsampling: the final upsampling moved to the runtime (its stride).
        parity_fp32, parity_int8: torch against the written model at three shapes.
        reduce_range_trial, int8, fp16: the quantisation's facts.
        accuracy, accuracy_control: the accuracy gate and the layers returned to float to pass it.
        uint8_input: the uint8-input form, when asked.
        steps_s: seconds per step.
    """

    output: str | None = None
    quantize: str | None = None
    opset: int | None = None
    export_shape: list[int] | None = None
    versions: dict[str, str] | None = None
    total_s: float | None = None
    exporter: str | None = None
    nodes: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    simplifier: str | None = None
    simplifier_failure: str | None = None
    rewrite: dict[str, Any] | None = None
    runtime_upsampling: dict[str, Any] | None = None
    parity_fp32: list[dict[str, Any]] | None = None
    parity_int8: list[dict[str, Any]] | None = None
    reduce_range_trial: dict[str, Any] | None = None
    int8: dict[str, Any] | None = None
    fp16: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    accuracy_control: dict[str, Any] | None = None
    uint8_input: dict[str, Any] | None = None
    steps_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The report file's document: schema fields first, the steps that ran."""
        from fcnedge.results import versioned

        return versioned("export-report", {k: v for k, v in asdict(self).items() if v is not None})


@dataclass
class ExportRun:
    """State passed between steps, and the report that is written beside the model."""

    spec: ExportSpec
    meta: ModelMeta
    work: Path
    report: ExportReport = field(default_factory=ExportReport)
    proto: Any = None
    upsampling_nodes: list[str] | None = None

    def step(self, name: str, t0: float) -> None:
        self.report.steps_s[name] = round(time.perf_counter() - t0, 3)


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
