"""``fcnedge convert MODEL --target openvino -o DIR``: an OpenVINO IR (``model.xml`` + ``model.bin``) of an fcnedge
ONNX model, with the model's fcnedge metadata in its rt_info and a ``target.json`` report beside it.

The IR is the same graph (fp32, or the int8 QDQ file's quantised graph as OpenVINO reads it; weights kept in their
precision, no fp16 compression). Before anything is published, the IR is opened through the seam and its class ids
are compared with the ONNX file's on OpenVINO (the conversion must be exact: >= 99.5 % of the pixels of every
frame, in practice 100 %) and, as information, with ONNX Runtime's; a failed check writes nothing at ``DIR``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import ExportError, MissingDependencyError
from fcnedge.exporters.targets import PARITY_MIN, agreements, worst, write_target_json
from fcnedge.fsutil import staged_folder

log = logging.getLogger(__name__)


__all__ = ["PARITY_MIN", "to_openvino_ir"]


def _metadata(path: Path) -> dict[str, str]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props if p.key.startswith("fcnedge")}


def to_openvino_ir(
    src: Path,
    out_dir: Path,
    frames: list[NDArray[np.uint8]],
    *,
    force: bool = False,
    threads: int = 0,
    extras: Sequence[Path] = (),
) -> dict[str, Any]:
    """Write ``out_dir/model.xml``, ``model.bin`` and ``target.json``; returns the report.

    Raises:
        MissingDependencyError: openvino is not installed.
        OutputExistsError: ``out_dir`` exists and not ``force``.
        ExportError: the IR's ids differ from the ONNX file's on OpenVINO (nothing is written).
    """
    try:
        import openvino as ov
    except ImportError:
        raise MissingDependencyError("--target openvino needs OpenVINO: pip install 'fcnedge[openvino]'") from None
    from fcnedge.runtime.open import open_predictor
    from fcnedge.runtime.openvino_engine import RT_INFO, query_support

    with staged_folder(Path(out_dir), force=force) as work:
        model = ov.Core().read_model(str(src))
        model.set_rt_info(json.dumps(_metadata(src), sort_keys=True), RT_INFO)
        xml = work / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        ir = open_predictor(xml, providers="openvino", threads=threads)
        ref_ov = open_predictor(src, providers="openvino", threads=threads)
        ref_ort = open_predictor(src, providers="cpu", threads=threads)
        rows = agreements(ir, {"onnx_on_openvino": ref_ov, "onnx_on_onnxruntime": ref_ort}, frames)
        on_ov = worst(rows, "onnx_on_openvino")
        if on_ov < PARITY_MIN:
            raise ExportError(
                f"the OpenVINO IR of {src.name} agrees with the ONNX file on only {100 * on_ov:.2f} % of a frame's "
                f"pixels (needs {100 * PARITY_MIN:.1f} %): nothing written; report it with the model"
            )
        support = [
            {"device": d, "operations": n, "supported": k, "unsupported_ops": list(m)}
            for d, n, k, m in query_support(xml)
        ]
        report = {
            "target": "openvino",
            "source": str(src),
            "files": ["model.xml", "model.bin"],
            "precision": "int8 (QDQ)" if _quantised(src) else "fp32",
            "meta_in": "rt_info " + "/".join(RT_INFO),
            "parity": rows,
            "worst_agreement_vs_onnx_on_openvino": on_ov,
            "worst_agreement_vs_onnx_on_onnxruntime": worst(rows, "onnx_on_onnxruntime"),
            "devices": support,
            "openvino": ov.__version__,
        }
        write_target_json(work, report, extras)
        del ir, ref_ov, ref_ort
        report["files"] = [str(out_dir / f) for f in ("model.xml", "model.bin", "target.json")]
    return report


def _quantised(path: Path) -> bool:
    import onnx

    from fcnedge.runtime.session import quantised_ops

    return bool(quantised_ops(onnx.load(str(path), load_external_data=False)))
