"""``--target ort-mobile``: one fixed-shape model that NNAPI (Android) and CoreML (iOS/macOS) take whole.

What the phone gets, in one folder:

- ``model.onnx``: the model fixed to (1, 3, H, W) (the tile the app feeds), its upsampling in the ``dense-dcr``
  form (3x3 Conv -> DepthToSpace in DCR order, exact; :mod:`fcnedge.exporters.rewrite`): the Pad and Resize of the
  CPU's fast form are what split the model into six partitions on NNAPI and CoreML, and only DCR DepthToSpace is
  taken by NNAPI and CoreML's NeuralNetwork format.
- ``model.ort``: the same in ONNX Runtime's own format (``onnxruntime.tools.convert_onnx_models_to_ort``, the
  *runtime* optimisation style that ORT recommends for NNAPI and CoreML), what ORT Mobile packages load.
- ``required_operators.config``: the operators a reduced ORT build needs for it (``--include_ops_by_config``).
- ``target.json``: the readiness per execution provider (ORT's own checker), and the proof: the ``.ort`` file,
  run in fcnedge's predictor on this machine, against the float model on the same frames.

int8 is QDQ: NNAPI takes it whole; ORT's CoreML EP has no QuantizeLinear/DequantizeLinear, so an iPhone should get
fp16 or fp32 (``target.json`` says so).
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import ExportError
from fcnedge.fsutil import staged_folder

log = logging.getLogger(__name__)

__all__ = ["WHOLE_ON", "summary", "to_ort_mobile"]

# the execution providers that must take the model as one partition, per precision
WHOLE_ON = {
    "fp32": ("nnapi", "coreml-nn", "coreml-mlprogram"),
    "fp16": ("nnapi", "coreml-nn", "coreml-mlprogram"),
    "int8": ("nnapi",),
}


def _convert_to_ort(model: Path, work: Path) -> None:
    """``model`` -> ``work/model.ort`` and ``work/required_operators.config`` (ORT's converter, quietly)."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    conv = work / "ort-conversion"
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            convert_onnx_models_to_ort(model, output_dir=conv, optimization_styles=[OptimizationStyle.Runtime])
    except Exception as exc:  # the converter raises whatever ORT raised
        raise ExportError(
            f"ONNX Runtime could not convert {model.name} to the ORT format ({type(exc).__name__}: "
            f"{str(exc)[:200]}): nothing written; report it with the model"
        ) from exc
    found = sorted(conv.glob("*.ort"))
    configs = sorted(conv.glob("*.config"))
    if len(found) != 1 or len(configs) != 1:
        raise ExportError(f"ONNX Runtime's converter wrote {[p.name for p in conv.iterdir()]}: nothing written")
    found[0].replace(work / "model.ort")
    lines = [ln for ln in configs[0].read_text().splitlines() if not ln.startswith("#")]
    head = "# operators model.ort needs: build ONNX Runtime with --include_ops_by_config required_operators.config\n"
    (work / "required_operators.config").write_text(head + "\n".join(lines) + "\n")
    shutil.rmtree(conv)


def _precision(path: Path) -> str:
    import onnx

    from fcnedge.runtime.session import quantised_ops

    proto = onnx.load(str(path), load_external_data=False)
    if quantised_ops(proto):
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    return "fp16" if any(i.data_type == fp16 for i in proto.graph.initializer) else "fp32"


def to_ort_mobile(
    src: Path,
    out_dir: Path,
    shape: tuple[int, int],
    frames: list[NDArray[np.uint8]],
    reference: Any,
    *,
    reference_name: str = "the float model",
    force: bool = False,
    threads: int = 0,
    extras: Sequence[Path] = (),
) -> dict[str, Any]:
    """Write ``out_dir`` (model.onnx, model.ort, required_operators.config, target.json); returns the report.

    Args:
        src: an fcnedge ONNX file whose upsampling is already in the ``dense-dcr`` form (or has none).
        shape: the (H, W) the app feeds, multiples of the stride.
        frames: RGB frames to prove the ``.ort`` file on.
        reference: a TiledPredictor of the float model, tiled like the fixed model (``shape`` tiles); the
            ``.ort`` file must agree with it (fp32, fp16) and with ``src`` (every precision) on 99.5 % of pixels.
        reference_name: what ``reference`` is, for the report.

    Raises:
        OutputExistsError: ``out_dir`` exists and not ``force``.
        ConfigError: ``shape`` off the stride.
        ExportError, ParityError: conversion failed or the ``.ort`` file's ids differ (nothing is written).
    """
    from fcnedge.exporters.targets import PARITY_MIN, agreements, fixed_shape_copy, readiness, worst, write_target_json
    from fcnedge.runtime.open import open_predictor

    with staged_folder(Path(out_dir), force=force) as work:
        fixed = work / "model.onnx"
        fixed_shape_copy(src, fixed, shape)
        precision = _precision(fixed)
        rows = readiness(fixed)
        _convert_to_ort(fixed, work)
        mobile = open_predictor(work / "model.ort", threads=threads, tile=shape)
        same = open_predictor(src, threads=threads, tile=shape)
        parity = agreements(mobile, {"source_onnx": same, "reference": reference}, frames)
        worst_src, worst_ref = worst(parity, "source_onnx"), worst(parity, "reference")
        if worst_src < PARITY_MIN or (precision != "int8" and worst_ref < PARITY_MIN):
            from fcnedge.errors import ParityError

            raise ParityError(
                f"the ORT-format file agrees with the ONNX model on {100 * worst_src:.2f} % and with {reference_name} "
                f"on {100 * worst_ref:.2f} % of a frame's pixels (needs {100 * PARITY_MIN:.1f} %): nothing written; "
                "report it with the model"
            )
        whole = {r.target: r.partitions == 1 and r.verdict == "YES" for r in rows}
        report = {
            "target": "ort-mobile",
            "source": str(src),
            "files": ["model.onnx", "model.ort", "required_operators.config"],
            "input": [1, 3, *shape],
            "precision": precision,
            "upsampling": "dense-dcr (3x3 Conv -> DepthToSpace DCR, exact)",
            "one_partition_on": [t for t, ok in whole.items() if ok and t != "onnx-cpu"],
            "required_whole_on": list(WHOLE_ON[precision]),
            "readiness": [r.to_json() for r in rows],
            "parity": parity,
            "worst_agreement_vs_source_onnx": worst_src,
            "reference": reference_name,
            "worst_agreement_vs_reference": worst_ref,
            "verified_with": "ONNX Runtime CPU EP on this machine (the NNAPI/CoreML verdicts are ORT's checker's)",
        }
        if precision == "int8":
            report["coreml"] = "ORT's CoreML EP takes no QuantizeLinear/DequantizeLinear: export fp16 or fp32 for iOS"
        write_target_json(work, report, extras)
        del mobile, same
    return report


def summary(report: dict[str, Any]) -> str:
    """One line for the CLI."""
    missing = [t for t in report["required_whole_on"] if t not in report["one_partition_on"]]
    whole = ", ".join(report["one_partition_on"]) or "no mobile EP"
    line = (
        f"{report['precision']} model fixed to {'x'.join(map(str, report['input']))}: one partition on {whole}; "
        f"the .ort file's ids agree with {report['reference']} on {100 * report['worst_agreement_vs_reference']:.3f}"
        f" % of pixels (worst of {len(report['parity'])} frames)"
    )
    if missing:
        line += f"; NOT one partition on {', '.join(missing)} (target.json names the refused operators)"
    if "coreml" in report:
        line += "; for CoreML export fp16 (int8 QDQ runs on NNAPI)"
    return line
