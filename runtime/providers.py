"""Execution providers: short names -> ONNX Runtime providers with sensible options. Strict by default."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fcnedge.errors import ConfigError, ProviderUnavailableError
from fcnedge.specs import Provider, ProviderSpec

log = logging.getLogger(__name__)

GPU_WHEEL = "onnxruntime-gpu==1.31.1"
GPU_INSTALL = f"pip uninstall -y onnxruntime && pip install {GPU_WHEEL}"
CLASH_FIX = f"pip uninstall -y onnxruntime onnxruntime-gpu && pip install {GPU_WHEEL}"

ORT_NAMES: dict[Provider, str] = {
    Provider.CPU: "CPUExecutionProvider",
    Provider.CUDA: "CUDAExecutionProvider",
    Provider.TENSORRT: "TensorrtExecutionProvider",
    Provider.OPENVINO: "OpenVINOExecutionProvider",
    Provider.COREML: "CoreMLExecutionProvider",
    Provider.DML: "DmlExecutionProvider",
}
INSTALL_HINT: dict[Provider, str] = {
    Provider.CPU: "pip install onnxruntime",
    Provider.CUDA: f"{GPU_INSTALL} (CUDA 13) and an NVIDIA driver",
    Provider.TENSORRT: f"{GPU_INSTALL} and TensorRT",
    Provider.OPENVINO: "pip install onnxruntime-openvino",
    Provider.COREML: "use the macOS onnxruntime wheel",
    Provider.DML: "pip install onnxruntime-directml (Windows)",
}


def parse_providers(text: str) -> tuple[Provider, ...]:
    """``"tensorrt,cuda,cpu"`` -> (Provider.TENSORRT, Provider.CUDA, Provider.CPU).

    Raises:
        ConfigError: an unknown name.
    """
    out = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(Provider(part))
        except ValueError:
            valid = ", ".join(p.value for p in Provider)
            raise ConfigError(f"provider {part!r} is unknown: choose from {valid} (or a list like cuda,cpu)") from None
    if not out:
        raise ConfigError("no provider given: pass e.g. --provider cpu")
    return tuple(out)


def available() -> list[str]:
    """The providers this onnxruntime build offers."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def provider_options(
    p: Provider, spec: ProviderSpec, *, tile: tuple[int, int] | None = None, input_name: str | None = None
) -> dict[str, Any]:
    """ONNX Runtime options for one provider."""
    if p is Provider.CUDA:
        return {
            "device_id": spec.device_id,
            "cudnn_conv_algo_search": "HEURISTIC",  # new tile shapes must not trigger an exhaustive search
            "arena_extend_strategy": "kSameAsRequested",
            "do_copy_in_default_stream": True,
        }
    if p is Provider.TENSORRT:
        opts: dict[str, Any] = {"device_id": spec.device_id, "trt_fp16_enable": True}
        if spec.trt_cache is not None:
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(spec.trt_cache))
        if tile is not None and input_name:
            h, w = tile
            opts.update(
                trt_profile_min_shapes=f"{input_name}:1x3x32x32",
                trt_profile_opt_shapes=f"{input_name}:1x3x{h}x{w}",
                trt_profile_max_shapes=f"{input_name}:8x3x{h}x{w}",
            )
        return opts
    if p is Provider.OPENVINO:
        return {"device_type": spec.openvino_device}
    if p is Provider.DML:
        return {"device_id": spec.device_id}
    return {}


def resolve(
    spec: ProviderSpec, *, tile: tuple[int, int] | None = None, input_name: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The (provider, options) list to create a session with.

    Raises:
        ProviderUnavailableError: a requested provider is missing and fallback is not allowed.
    """
    have = available()
    chosen: list[tuple[str, dict[str, Any]]] = []
    for p in spec.providers:
        name = ORT_NAMES[p]
        if name in have:
            chosen.append((name, provider_options(p, spec, tile=tile, input_name=input_name)))
            continue
        msg = unavailable_message(p, have)
        if not spec.allow_fallback:
            raise ProviderUnavailableError(msg)
        log.warning("%s; falling back (--allow-fallback)", msg)
    if not chosen:
        if not spec.allow_fallback:
            raise ProviderUnavailableError("no requested provider is available")
        log.warning("no requested provider is available; running on CPUExecutionProvider (--allow-fallback)")
        chosen.append(("CPUExecutionProvider", {}))
    return chosen


def installed_ort_wheels() -> list[str]:
    """The ONNX Runtime distributions installed in this environment (they all install the one ``onnxruntime``
    package folder, so with two of them the last one installed silently wins)."""
    from importlib import metadata

    names = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return found


def unavailable_message(p: Provider, have: Sequence[str]) -> str:
    """The one-line error for a missing provider; names the two-wheel clash when that is the cause."""
    wheels = installed_ort_wheels()
    if len(wheels) > 1 and p in (Provider.CUDA, Provider.TENSORRT, Provider.OPENVINO, Provider.DML):
        return (
            f"provider {p.value!r} is not available: {' and '.join(wheels)} are installed together and share one "
            f"package folder, so one build hides the other (available: {', '.join(have)}); fix: {CLASH_FIX}"
            + ("" if p in (Provider.CUDA, Provider.TENSORRT) else f" (or the {p.value} wheel in its place)")
        )
    return (
        f"provider {p.value!r} is not available in this onnxruntime build (available: {', '.join(have)}); "
        f"{INSTALL_HINT[p]}"
    )


def check_session_providers(requested: list[str], actual: Sequence[str], *, allow_fallback: bool) -> None:
    """After creation, the session must hold the first requested provider (ORT drops ones that fail to init).

    Raises:
        ProviderUnavailableError: it does not and fallback is not allowed.
    """
    want = requested[0]
    if want in actual:
        return
    msg = (
        f"onnxruntime could not initialise {want} (the session runs on {', '.join(actual)}); check the driver "
        "and CUDA/cuDNN libraries, or pass --allow-fallback"
    )
    if not allow_fallback:
        raise ProviderUnavailableError(msg)
    log.warning("%s; continuing on %s (--allow-fallback)", msg, actual[0])
