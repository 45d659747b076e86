"""Changing an existing fcnedge ONNX file without torch: quantising it (``fcnedge quantize``), converting it to
the runtime's exact fast forms (``fcnedge convert``)."""

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


CONVERT_AGREEMENT_MIN = 0.999  # class ids, converted vs original (int8 logits tie now and then; rounding picks)


def convert_onnx(
    src: Path, dst: Path, *, runtime_upsampling: bool, uint8_input: bool, force: bool, threads: int = 0
) -> dict[str, Any]:
    """Write ``src`` with the exact runtime forms applied (the final bilinear upsampling moved to the runtime, uint8
    pixel input), prove the class ids agree with ``src`` through the one seam, and replace ``dst`` atomically.

    Raises:
        ConfigError: nothing asked, a form already present, or output problems.
        ModelMetaError: ``src`` is not an fcnedge ONNX model.
        ExportError: the final upsampling cannot move (not a bilinear, bias-free FCN upsampling).
        ParityError: the converted model's ids disagree with the original's.
    """
    import onnx

    from fcnedge.exporters.cut import move_final_upsampling
    from fcnedge.exporters.export_run import save_proto
    from fcnedge.exporters.uint8_input import to_uint8_input
    from fcnedge.meta import RUNTIME_UPSAMPLING_KEY
    from fcnedge.runtime.session import read_onnx_meta

    if not (runtime_upsampling or uint8_input):
        raise ConfigError("nothing to convert: pass --runtime-upsampling and/or --uint8-input")
    check_output(dst, force=force)
    meta, _ = read_onnx_meta(src)
    if meta is None:
        raise ModelMetaError(f"{src} carries no fcnedge metadata: export it with fcnedge export first")
    proto = onnx.load(str(src))
    facts: dict[str, Any] = {}
    if runtime_upsampling:
        if any(p.key == RUNTIME_UPSAMPLING_KEY for p in proto.metadata_props):
            raise ConfigError(f"{src} already ends at stride s (runtime upsampling): drop --runtime-upsampling")
        if len(proto.graph.output) > 1:  # its ArgMax reads the full-resolution logits the cut would remove
            raise ConfigError(
                f"{src} has an ids output (--ids-output), which needs the upsampling in the graph: drop "
                "--runtime-upsampling, or convert an export made without --ids-output"
            )
        facts["runtime_upsampling"] = move_final_upsampling(proto)
    if uint8_input:
        if proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8:
            raise ConfigError(f"{src} already takes uint8 pixels: drop --uint8-input")
        facts["uint8_input"] = to_uint8_input(proto, meta)
    with temp_dir(dst.parent, "convert") as tmp:
        out = Path(tmp) / "c.onnx"
        save_proto(proto, out)
        facts["parity"] = _prove_same_ids(src, out, meta.stride, threads)
        out.replace(dst)
    return {**facts, "bytes_in": src.stat().st_size, "bytes_out": dst.stat().st_size}


def _prove_same_ids(src: Path, out: Path, stride: int, threads: int) -> list[dict[str, Any]]:
    """Class ids of ``src`` and ``out`` on synthetic images at three shapes (one tile, another, an odd size).

    Raises:
        ParityError: agreement under :data:`CONVERT_AGREEMENT_MIN` on any shape.
    """
    from fcnedge.data.synthetic import synthetic_images
    from fcnedge.errors import ParityError
    from fcnedge.exporters.verify import verify_shapes
    from fcnedge.runtime.open import open_predictor

    ref, new = open_predictor(src, threads=threads), open_predictor(out, threads=threads)
    shapes = verify_shapes(ref.spec.size, stride)
    rows = []
    for shape, img in zip(shapes, synthetic_images(shapes, seed=3), strict=True):
        agreement = float((ref.predict(img) == new.predict(img)).mean())
        rows.append({"shape": list(shape), "argmax_agreement": agreement})
        if agreement < CONVERT_AGREEMENT_MIN:
            raise ParityError(
                f"the converted model agrees with {src.name} on only {agreement:.3%} of pixels at {shape} "
                f"(< {CONVERT_AGREEMENT_MIN:.1%}): keep the original"
            )
    return rows


def fast_form(src: Path, folder: Path, *, runtime_upsampling: bool = True) -> tuple[Path | None, str]:
    """``src`` in its exact fast form (runtime upsampling where the final upsampling can move, uint8 input), written
    once into ``folder`` (named by the file's bytes and fcnedge's version) and reused; or None and why not.

    Raises:
        ParityError: the converted model's ids disagree with the original's (never written).
    """
    import hashlib

    import onnx

    from fcnedge.errors import ExportError, ParityError
    from fcnedge.exporters.torch_sources import EXPORT_FORMAT
    from fcnedge.meta import RUNTIME_UPSAMPLING_KEY

    proto = onnx.load(str(src), load_external_data=False)
    move = runtime_upsampling and len(proto.graph.output) == 1
    move = move and not any(p.key == RUNTIME_UPSAMPLING_KEY for p in proto.metadata_props)
    u8 = proto.graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.UINT8
    if not (move or u8):
        return None, "the model is already in its fast form"
    key = hashlib.sha256(src.read_bytes() + f"x{EXPORT_FORMAT}{move}".encode()).hexdigest()[:16]
    dst = folder / f"{src.stem}-fast-{key}.onnx"
    if dst.is_file():
        made = onnx.load(str(dst), load_external_data=False)
        forms = [
            "runtime upsampling" if any(p.key == RUNTIME_UPSAMPLING_KEY for p in made.metadata_props) else "",
            "uint8 input" if made.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8 else "",
        ]
        return dst, f"{dst.name}: {' + '.join(f for f in forms if f)} (reused)"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        convert_onnx(src, dst, runtime_upsampling=move, uint8_input=u8, force=False)
        return dst, f"{dst.name}: {'runtime upsampling + ' if move else ''}{'uint8 input' if u8 else ''}".rstrip(" +")
    except ParityError as exc:  # not proven equal: an int8 model whose float layers meet the input flips ids
        if not (move and u8):  # under float rounding of the normalisation; the runtime upsampling alone is exact
            raise
        convert_onnx(src, dst, runtime_upsampling=True, uint8_input=False, force=False)
        return dst, f"{dst.name}: runtime upsampling (uint8 input left out: {exc})"
    except ExportError as exc:  # the final upsampling cannot move (trained): uint8 input alone
        if not (move and u8):
            return None, str(exc)
        convert_onnx(src, dst, runtime_upsampling=False, uint8_input=True, force=False)
        return dst, f"{dst.name}: uint8 input (the final upsampling stays: {exc})"
