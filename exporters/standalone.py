"""Quantising an existing fcnedge ONNX file (``fcnedge quantize``), without torch."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fcnedge.errors import ConfigError, ModelMetaError
from fcnedge.fsutil import check_output
from fcnedge.specs import Quantize, QuantSpec


def quantize_onnx(src: Path, dst: Path, *, mode: Quantize, spec: QuantSpec, force: bool) -> dict[str, Any]:
    """Write an int8 or fp16 version of ``src`` to ``dst`` atomically.

    Raises:
        ConfigError: mode none, or output problems.
        ModelMetaError: ``src`` is not an fcnedge ONNX model.
        ExportError, DatasetError: quantisation or calibration failed.
    """
    import onnx

    from fcnedge.exporters.onnx_meta import embed_meta
    from fcnedge.exporters.quantize import calibration_images, convert_fp16, quantize_int8
    from fcnedge.runtime.session import read_onnx_meta

    if mode is Quantize.NONE:
        raise ConfigError("--quantize none would copy the model: choose int8 or fp16")
    check_output(dst, force=force)
    meta, _ = read_onnx_meta(src)
    if meta is None:
        raise ModelMetaError(f"{src} carries no fcnedge metadata: export it with fcnedge export first")
    with tempfile.TemporaryDirectory(prefix=".fcnedge-q-", dir=dst.parent) as tmp:
        out = Path(tmp) / "q.onnx"
        facts: dict[str, Any]
        if mode is Quantize.INT8:
            facts = quantize_int8(src, out, meta, spec, calibration_images(spec))
            proto = onnx.load(str(out))
        else:
            proto = convert_fp16(onnx.load(str(src)))
            facts = {"io": "float32"}
        embed_meta(proto, meta.with_provenance(quantize=mode.value))
        onnx.save(proto, str(out))
        out.replace(dst)
    return {**facts, "bytes_in": src.stat().st_size, "bytes_out": dst.stat().st_size}
