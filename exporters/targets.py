"""``fcnedge targets MODEL``: how much of a model each deployment target takes, before anything is converted.

Per target: the nodes it runs, in how many partitions, the operators it does not take, and a verdict.

- ORT Mobile with NNAPI (Android) and CoreML (iOS/macOS; the NeuralNetwork and MLProgram formats): ONNX Runtime's
  own usability checker (``onnxruntime.tools.mobile_helpers``), on the graph as ORT Mobile sees it (optimised to
  the basic level, as conversion to the ORT format does). An NPU delegate wants one partition: every extra one is a
  copy between the NPU and the CPU per frame. Verdicts are the checker's: YES (one partition, > 75 % of the nodes),
  MAYBE, NO.
- OpenVINO (CPU, and GPU/NPU where present): ``query_model`` per device.
- ONNX Runtime's CPU EP: every node, one partition (the reference).

Mobile NPUs take fixed shapes: ``--shape HxW`` checks the model fixed to the tile the app will feed it (batch 1);
without it the model's own (dynamic) shapes are checked, which NNAPI and CoreML mostly refuse.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fcnedge.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

__all__ = [
    "PARITY_MIN",
    "Readiness",
    "agreements",
    "check_fixed_shape",
    "fixed_shape_copy",
    "readiness",
    "worst",
    "write_target_json",
]

PARITY_MIN = 0.995  # per frame, the share of pixels whose class id a converted model must share (every target)

MOBILE_EPS = (
    ("nnapi", "ORT Mobile, NNAPI (Android)", None),
    ("coreml-nn", "ORT Mobile, CoreML NeuralNetwork", "coreml_supported_neuralnetwork_ops.md"),
    ("coreml-mlprogram", "ORT Mobile, CoreML MLProgram", "coreml_supported_mlprogram_ops.md"),
)


@dataclass(frozen=True)
class Readiness:
    """One target's share of the model."""

    target: str
    runtime: str
    nodes: int
    supported: int
    partitions: int | None
    unsupported_ops: tuple[str, ...]
    verdict: str  # YES, MAYBE, NO
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["unsupported_ops"] = list(self.unsupported_ops)
        return d


def agreements(candidate: Any, references: dict[str, Any], frames: Sequence[Any]) -> list[dict[str, Any]]:
    """Per frame: its index, shape and, for each named reference predictor, the share of pixels whose class id
    ``candidate`` gives too (``agreement_vs_<name>``): the parity rows of every target's ``target.json``."""
    import numpy as np

    rows: list[dict[str, Any]] = []
    for i, frame in enumerate(frames):
        ids = candidate.predict(frame)
        row: dict[str, Any] = {"frame": i, "shape": list(frame.shape[:2])}
        for name, ref in references.items():
            row[f"agreement_vs_{name}"] = float(np.mean(ids == ref.predict(frame)))
        rows.append(row)
    return rows


def worst(rows: Sequence[dict[str, Any]], name: str) -> float:
    """The lowest ``agreement_vs_<name>`` of :func:`agreements`' rows."""
    return min(float(r[f"agreement_vs_{name}"]) for r in rows)


def write_target_json(work: Path, report: dict[str, Any], extras: Sequence[Path] = ()) -> None:
    """A target folder's ``target.json`` (schema ``fcnedge.target``) and the ``extras`` copied beside it (e.g. the
    export's report), written into the work folder: published with it, never after it."""
    import shutil

    from fcnedge.fsutil import atomic_write_json
    from fcnedge.results import versioned

    atomic_write_json(work / "target.json", versioned("target", report))
    for extra in extras:
        shutil.copyfile(extra, work / extra.name)


def check_fixed_shape(shape: tuple[int, int]) -> None:
    """Raise unless ``shape`` (a target's fixed input, ``--shape``) has positive sides on the FCNs' stride, 32.

    Raises:
        ConfigError: a side that is not a positive multiple of 32.
    """
    h, w = shape
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ConfigError(f"--shape {h}x{w} is off the stride: give sides that are multiples of 32, e.g. 384x480")


def fixed_shape_copy(src: Path, dst: Path, shape: tuple[int, int]) -> None:
    """``src`` with its image input fixed to (1, 3, H, W) and the shapes inferred through the graph.

    Raises:
        ConfigError: a side that is not a positive multiple of 32 (the FCN's stride).
    """
    import onnx
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

    check_fixed_shape(shape)
    h, w = shape
    model = onnx.load(str(src))
    make_input_shape_fixed(model.graph, model.graph.input[0].name, [1, 3, h, w])
    model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    fix_output_shapes(model)
    onnx.save(model, str(dst))


def _mobile(path: Path, *, fixed: bool) -> list[Readiness]:
    from onnxruntime.tools.mobile_helpers import usability_checker as uc
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    out = []
    with tempfile.TemporaryDirectory(prefix="fcnedge-targets-") as tmp:
        basic = Path(tmp) / path.name
        optimize_model(path, basic, use_external_initializers=False)  # what the ORT-format conversion does first
        model = ModelProtoWithShapeInfo(basic).model_with_shape_info
        for target, runtime, config in MOBILE_EPS:
            if config is None:
                info = uc.check_nnapi_partitions(model, require_fixed_input_sizes=True)
            else:
                info = uc.check_coreml_partitions(model, require_fixed_input_sizes=True, config_filename=config)
            note = ""
            dyn = info.nodes_unsupported_due_to_dynamic_input
            if dyn and fixed:  # sizes computed in the graph (Shape -> Resize) stay unknown to the checker
                note = f"{dyn} nodes whose shapes stay dynamic with a fixed input (sizes computed in the graph)"
            elif dyn:
                note = f"{dyn} nodes refused for dynamic shapes: check with --shape HxW"
            out.append(
                Readiness(
                    target=target,
                    runtime=runtime,
                    nodes=info.num_nodes,
                    supported=info.num_supported_nodes,
                    partitions=info.num_partitions,
                    unsupported_ops=tuple(sorted(info.unsupported_ops)),
                    verdict=info.suitability().name,
                    note=note,
                )
            )
    return out


def readiness(path: Path, shape: tuple[int, int] | None = None) -> list[Readiness]:
    """Every target's share of the ONNX model at ``path`` (fixed to ``shape`` first when given).

    Raises:
        ConfigError: ``shape`` off the stride.
        MissingDependencyError: onnx is missing.
    """
    from fcnedge.runtime.openvino_engine import openvino_available, query_support

    try:
        import onnx  # noqa: F401  (the checks read the graph; the edge install has ONNX Runtime only)
    except ImportError:
        raise MissingDependencyError("fcnedge targets reads graphs with onnx: pip install 'fcnedge[torch]'") from None
    with tempfile.TemporaryDirectory(prefix="fcnedge-targets-") as tmp:
        checked = path
        if shape is not None:
            checked = Path(tmp) / f"fixed-{path.name}"
            fixed_shape_copy(path, checked, shape)
        rows = _mobile(checked, fixed=shape is not None)
        n = rows[0].nodes  # the graph as ORT sees it after its basic optimisation
        rows.append(Readiness("onnx-cpu", "ONNX Runtime, CPU EP", n, n, 1, (), "YES"))
        if openvino_available():
            for device, total, supported, missing in query_support(checked, shape):
                rows.append(
                    Readiness(
                        target=f"openvino-{device.lower()}",
                        runtime=f"OpenVINO, {device}",
                        nodes=total,
                        supported=supported,
                        partitions=None,
                        unsupported_ops=missing,
                        verdict="YES" if supported == total else ("MAYBE" if supported > 0.75 * total else "NO"),
                    )
                )
    return rows
