"""Quantising an existing fcnedge ONNX file (``fcnedge quantize``), without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fcnedge.errors import ConfigError, ModelMetaError
from fcnedge.fsutil import check_output, temp_dir
from fcnedge.runtime.session import quantised_ops
from fcnedge.specs import Quantize, QuantSpec


def refuse_quantised(path: Path, proto: Any) -> None:
    """Raise when ``proto`` is already int8 or fp16: quantising it again writes a broken model.

    Raises:
        ConfigError: quantised ops or float16 weights are present.
    """
    from onnx import TensorProto

    ops = quantised_ops(proto)
    fp16 = any(i.data_type == TensorProto.FLOAT16 for i in proto.graph.initializer)
    if ops or fp16:
        kind = f"int8 ({', '.join(ops[:2])} nodes)" if ops else "fp16 (float16 weights)"
        raise ConfigError(
            f"{path} is already {kind}: quantise its fp32 export instead (fcnedge export MODEL.pt -o m.onnx, then "
            "fcnedge quantize m.onnx)"
        )


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
    refuse_quantised(src, onnx.load(str(src)))
    with temp_dir(dst.parent, "quantize") as tmp:
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
