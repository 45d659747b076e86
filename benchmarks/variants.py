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

from fcnedge.errors import ConfigError, MissingDependencyError
from fcnedge.meta import ModelMeta
from fcnedge.specs import ProviderSpec, QuantSpec

log = logging.getLogger(__name__)

TORCH_VARIANTS = ("torch", "torch-compile")
ONNX_VARIANTS = ("fp32", "int8", "fp16")
ALL_VARIANTS = (*TORCH_VARIANTS, *ONNX_VARIANTS, "openvino")

Run = Callable[[NDArray[np.float32]], NDArray[np.float32]]


@dataclass
class Built:
    """A runnable variant."""

    variant: str
    provider: str
    run: Run
    meta: ModelMeta
    max_batch: int = 1 << 16
    onnx_path: Path | None = None
    sync: Callable[[], None] | None = None
    note: str = ""


@dataclass(frozen=True)
class Source:
    """What is benchmarked: a torch model (checkpoint/default) or a ready .onnx file."""

    label: str
    torch_model: Any = None
    meta: ModelMeta | None = None
    digest: str = ""
    onnx_path: Path | None = None
    shipped_int8: Path | None = None


def parse_variants(text: str) -> list[str]:
    """``"torch,fp32,int8"`` -> list, validated.

    Raises:
        ConfigError: unknown variant.
    """
    out = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in out if v not in ALL_VARIANTS]
    if bad or not out:
        raise ConfigError(f"variant(s) {bad or text!r} unknown: choose from {', '.join(ALL_VARIANTS)}")
    return out


def cache_key(src: Source, variant: str, opset: int, shape: tuple[int, int], q: QuantSpec | None) -> str:
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
        else [str(q.calib_data), q.calib_count, q.method.value, q.per_channel, q.keep_upsampling_float],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_onnx(
    src: Source, variant: str, *, cache: Path, opset: int, shape: tuple[int, int], quant: QuantSpec | None, threads: int
) -> Path:
    """Export (or reuse from ``cache``) the fp32/int8/fp16 ONNX of ``src``.

    Raises:
        ConfigError: int8 without calibration data and no shipped int8 model.
    """
    from fcnedge.exporters.pipeline import run
    from fcnedge.specs import ExportSpec, Quantize

    if variant == "int8" and (quant is None or quant.calib_data is None):
        if src.shipped_int8 is not None:
            return src.shipped_int8
        raise ConfigError("the int8 variant needs calibration images: pass --calib-data DIR (or --data)")
    q = quant if variant == "int8" else None
    path = cache / f"{src.label}-{variant}-{cache_key(src, variant, opset, shape, q)}.onnx"
    if path.exists():
        log.info("reusing cached %s", path)
        return path
    cache.mkdir(parents=True, exist_ok=True)
    spec = ExportSpec(
        output=path,
        opset=opset,
        quantize=Quantize(variant if variant != "fp32" else "none"),
        export_shape=shape,
        quant=q,
    )
    run(spec, src.torch_model, src.meta, threads=threads)  # type: ignore[arg-type]
    return path


def build_torch(src: Source, variant: str, *, threads: int, cuda: bool = False) -> Built:
    """PyTorch eager or torch.compile, on CUDA when asked for and available, else on CPU."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    device = "cuda" if cuda and torch.cuda.is_available() else "cpu"
    model = src.torch_model.eval().to(device)
    note = ""
    if variant == "torch-compile":
        model = torch.compile(model, dynamic=False)
        note = "torch.compile (inductor), compiled for the benchmark shape during warm-up"

    def run(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            out: NDArray[np.float32] = model(torch.from_numpy(batch).to(device)).cpu().numpy()
        return out

    return Built(variant, f"torch-{device}", run, src.meta, note=note)  # type: ignore[arg-type]


def build_ort(path: Path, variant: str, spec: ProviderSpec, tile: tuple[int, int]) -> Built:
    """An ONNX Runtime session for a variant file; records the provider that actually runs."""
    from fcnedge.runtime.session import Session

    sess = Session(path, spec, tile=tile)
    # no sync hook: Session.run copies outputs to host memory, which already waits for a GPU to finish
    return Built(variant, sess.provider, sess.run, sess.meta, sess.max_batch, path)


def build_openvino(path: Path, meta: ModelMeta, *, threads: int, shape: tuple[int, int], batch: int) -> Built:
    """The OpenVINO runtime reading the same fp32 .onnx, reshaped to the static benchmark shape (its best case).

    Raises:
        MissingDependencyError: openvino is not installed.
    """
    try:
        import openvino as ov
    except ImportError:
        raise MissingDependencyError("the openvino variant needs OpenVINO: pip install 'fcnedge[openvino]'") from None
    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape([batch, 3, *shape])
    # f32 explicitly: on CPUs with AMX/AVX512-BF16 OpenVINO otherwise silently computes in bf16
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()

    def run(x: NDArray[np.float32]) -> NDArray[np.float32]:
        res = request.infer({0: x})
        out: NDArray[np.float32] = next(iter(res.values()))
        return out

    note = f"OpenVINO {ov.__version__}, f32, static shape"
    return Built("openvino", "openvino-cpu", run, meta, batch, path, note=note)
