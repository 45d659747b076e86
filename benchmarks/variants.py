"""Benchmark variants: the same model as PyTorch eager, torch.compile, ORT fp32/int8/fp16 and OpenVINO.

ONNX variants are built through the export pipeline and cached by content hash, so a second run reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import ConfigError
from fcnedge.meta import ModelMeta
from fcnedge.runtime.open import predictor_for
from fcnedge.runtime.predictor import TiledPredictor
from fcnedge.specs import ProviderSpec, QuantSpec, TileSpec, Variant

log = logging.getLogger(__name__)

TORCH_VARIANTS = (Variant.TORCH, Variant.TORCH_COMPILE)
ONNX_VARIANTS = (Variant.FP32, Variant.INT8, Variant.FP16)
OPENVINO_VARIANTS = (Variant.OPENVINO, Variant.OPENVINO_INT8, Variant.OPENVINO_BF16)
ALL_VARIANTS = (*TORCH_VARIANTS, *ONNX_VARIANTS, *OPENVINO_VARIANTS)

Run = Callable[[NDArray[np.float32]], NDArray[np.float32]]


@dataclass
class Built:
    """A runnable variant: ``run`` times inference alone, ``predictor`` (the runtime's, through the one seam)
    scores accuracy."""

    variant: Variant
    provider: str
    run: Run
    meta: ModelMeta
    predictor: TiledPredictor
    max_batch: int = 1 << 16
    onnx_path: Path | None = None
    sync: Callable[[], None] | None = None
    note: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """What is benchmarked: a torch model (checkpoint/default) or a ready .onnx file."""

    label: str
    torch_model: Any = None
    meta: ModelMeta | None = None
    digest: str = ""
    onnx_path: Path | None = None
    shipped_int8: Path | None = None


def parse_variants(text: str) -> list[Variant]:
    """``"torch,fp32,int8"`` -> list, validated.

    Raises:
        ConfigError: unknown variant.
    """
    out = [v.strip() for v in text.split(",") if v.strip()]
    valid = [v.value for v in ALL_VARIANTS]
    if not out:
        raise ConfigError(f"--variants {text!r} names nothing: give a comma-separated list, e.g. torch,fp32,int8")
    bad = [v for v in out if v not in valid]
    if bad or not out:
        raise ConfigError(f"variant(s) {bad or text!r} unknown: choose from {', '.join(valid)}")
    return [Variant(v) for v in out]


def cache_key(
    src: Source, variant: str, opset: int, shape: tuple[int, int], q: QuantSpec | None, *, runtime_up: bool = False
) -> str:
    """Content hash of everything that determines an exported variant."""
    from fcnedge._version import __version__

    facts = {
        "model": src.digest,
        "variant": variant,
        "opset": opset,
        "shape": shape,
        "fcnedge": __version__,
        "calib": None
        if q is None
        else [str(q.calib_data), q.calib_count, q.method.value, q.per_channel, q.keep_upsampling_float, q.reduce_range],
        "runtime_upsampling": runtime_up,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_onnx(
    src: Source,
    variant: Variant,
    *,
    cache: Path,
    opset: int,
    shape: tuple[int, int],
    quant: QuantSpec | None,
    threads: int,
    runtime_upsampling: bool = False,
    prefer_shipped: bool = True,
    fast_shipped: bool = False,
) -> tuple[Path, tuple[str, ...]]:
    """Export (or reuse from ``cache``) the fp32/int8/fp16 ONNX of ``src``; returns the path and any warning
    that belongs in the report. A bundled model's int8 row times its shipped file (the one users run, gated on
    CamVid) unless calibration was asked for (``prefer_shipped`` False) or none is shipped; ``fast_shipped``
    times it in fcnedge's exact fast form (runtime upsampling, uint8 input), converted into ``cache``.

    Raises:
        ConfigError: int8 without calibration data and no shipped int8 model.
    """
    from fcnedge.exporters.pipeline import run
    from fcnedge.specs import ExportSpec, Quantize

    no_calib = quant is None or quant.calib_data is None
    if variant is Variant.INT8 and src.shipped_int8 is not None and (prefer_shipped or no_calib):
        msg = (
            f"int8 row: the int8 file shipped with the bundled model ({src.shipped_int8.name}, calibrated and "
            "gated on CamVid) was timed, not a fresh quantisation; pass --calib-data DIR to quantise here"
        )
        log.warning(msg)
        if fast_shipped:
            fast, why = shipped_fast_form(src.shipped_int8, cache, label=src.label, runtime_up=runtime_upsampling)
            return fast, (msg, f"fast form: {why}")
        return src.shipped_int8, (msg,)
    if variant is Variant.INT8 and no_calib:
        raise ConfigError("the int8 variant needs calibration images: pass --calib-data DIR (or --data)")
    q = quant if variant is Variant.INT8 else None
    key = cache_key(src, variant.value, opset, shape, q, runtime_up=runtime_upsampling)
    path = cache / f"{src.label}-{variant.value}{'-rt' if runtime_upsampling else ''}-{key}.onnx"
    if path.exists():
        log.info("reusing cached %s", path)
        return path, ()
    cache.mkdir(parents=True, exist_ok=True)
    spec = ExportSpec(
        output=path,
        opset=opset,
        quantize=Quantize.NONE if variant is Variant.FP32 else Quantize(variant.value),
        export_shape=shape,
        quant=q,
        runtime_upsampling=runtime_upsampling,
    )
    run(spec, src.torch_model, src.meta, threads=threads)  # type: ignore[arg-type]
    return path, ()


def shipped_fast_form(shipped: Path, cache: Path, *, label: str, runtime_up: bool) -> tuple[Path, str]:
    """The shipped int8 file with uint8 input (and its final upsampling in the runtime when ``runtime_up``),
    converted once into ``cache`` (``fcnedge.exporters.standalone.fast_form``); ids proven equal on write. Returns
    the file and what it is (the forms applied, and any left out and why)."""
    from fcnedge.exporters.standalone import fast_form

    path, why = fast_form(shipped, cache / f"{label}-shipped", runtime_upsampling=runtime_up)
    if path is None:
        raise ConfigError(f"{shipped.name} has no fast form ({why}): run the bench with --graph-upsampling")
    return path, why


def build_torch(
    src: Source, variant: Variant, *, tile: TileSpec, threads: int, cuda: bool = False, scale: float | None = None
) -> Built:
    """PyTorch eager or torch.compile, on CUDA when asked for and available, else on CPU."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    device = "cuda" if cuda and torch.cuda.is_available() else "cpu"
    model = src.torch_model.eval().to(device)
    note = ""
    if variant is Variant.TORCH_COMPILE:
        model = torch.compile(model, dynamic=False)
        note = "torch.compile (inductor), compiled for the benchmark shape during warm-up"

    def run(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            out: NDArray[np.float32] = model(torch.from_numpy(batch).to(device)).cpu().numpy()
        return out

    assert src.meta is not None
    pred = predictor_for(run, src.meta, tile, threads=threads, scale=scale)
    return Built(variant, f"torch-{device}", run, src.meta, pred, note=note)


def build_ort(path: Path, variant: Variant, spec: ProviderSpec, tile: TileSpec, *, scale: float | None = None) -> Built:
    """A variant file opened through the one seam; records the provider that actually runs.

    Raises:
        ConfigError: a fixed-size model that cannot take the benchmark shape.
    """
    from fcnedge.runtime.open import check_fixed_size, check_model_input, open_predictor
    from fcnedge.runtime.session import read_onnx_meta

    meta, facts = read_onnx_meta(path)
    own = scale if scale is not None else (meta.scale if meta is not None else 1.0)
    check_fixed_size(facts["fixed_hw"], tile.size, scale=own)  # names --shape, before the tile is fitted
    pred = open_predictor(
        path, providers=spec, tile=tile.size, overlap=tile.overlap, blend=tile.blend, batch=tile.batch, scale=scale
    )
    check_model_input(pred, tile.size)
    sess = pred.session
    # no sync hook: Session.run copies outputs to host memory, which already waits for a GPU to finish
    return Built(variant, sess.provider, sess.run, sess.meta, pred, sess.max_batch, path)


def openvino_bf16_available() -> bool:
    """Whether OpenVINO computes bf16 on this CPU (AVX512-BF16 or AMX)."""
    try:
        import openvino as ov
    except ImportError:
        return False
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def build_openvino(
    path: Path,
    meta: ModelMeta,
    *,
    variant: Variant,
    threads: int,
    tile: TileSpec,
    batch: int,
    scale: float | None = None,
) -> Built:
    """The .onnx file (the fp32 export, or the int8 row's QDQ file) on fcnedge's OpenVINO engine, opened through
    the one seam (``--provider openvino``: a static-shape model compiled per input shape, OpenVINO's best case),
    f32 or bf16 as the variant says.

    Raises:
        ProviderUnavailableError: openvino is not installed (``pip install 'fcnedge[openvino]'``).
        ConfigError: openvino-bf16 on a CPU without bf16.
    """
    from fcnedge.runtime.open import open_predictor
    from fcnedge.specs import Provider

    precision = "bf16" if variant is Variant.OPENVINO_BF16 else "f32"
    spec = ProviderSpec(providers=(Provider.OPENVINO,), threads=threads, openvino_precision=precision)
    pred = open_predictor(
        path, providers=spec, threads=threads, tile=tile.size, overlap=tile.overlap, batch=batch, meta=meta, scale=scale
    )
    sess = pred.session
    note = f"fcnedge's OpenVINO engine (--provider openvino) on {path.name}, {precision}, static shape per input"
    return Built(variant, sess.provider, sess.run, sess.meta, pred, batch, path, note=note)
