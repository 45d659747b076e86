"""``--target tensorrt``: a TensorRT engine built through ONNX Runtime's TensorRT EP, on the GPU that will run it.

TensorRT engines are specific to the GPU and TensorRT version that build them, so this target only runs on a
CUDA machine with ``onnxruntime-gpu`` and TensorRT; elsewhere it is one line and exit 2. The folder holds
``model.onnx`` (what ORT opens), ``engine/`` (ORT's engine cache for the declared shape range: batch 1-8 up to the
tile, ``runtime/providers.py``) and ``target.json`` with the engine's ids against the ONNX file on the CPU EP.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import ParityError, ProviderUnavailableError
from fcnedge.exporters.targets import PARITY_MIN, agreements, worst, write_target_json
from fcnedge.fsutil import staged_folder

__all__ = ["check_tensorrt", "to_tensorrt"]


def check_tensorrt() -> None:
    """Raise unless this ONNX Runtime has the TensorRT EP.

    Raises:
        ProviderUnavailableError: no TensorRT EP here (a CPU machine, or onnxruntime without TensorRT).
    """
    import onnxruntime as ort

    have = ort.get_available_providers()
    if "TensorrtExecutionProvider" not in have:
        raise ProviderUnavailableError(
            "--target tensorrt builds the engine on the GPU that will run it, and this ONNX Runtime has no TensorRT "
            f"EP (it has {', '.join(p.replace('ExecutionProvider', '') for p in have)}): run the export on that "
            "machine (onnxruntime-gpu with CUDA and TensorRT), or copy the .onnx there and run fcnedge predict "
            "--provider tensorrt"
        )


def to_tensorrt(
    src: Path,
    out_dir: Path,
    shape: tuple[int, int],
    frames: list[NDArray[np.uint8]],
    *,
    force: bool = False,
    threads: int = 0,
    extras: Sequence[Path] = (),
) -> dict[str, Any]:
    """Build and prove the engine; write ``out_dir`` (model.onnx, engine/, target.json). Unverified on this
    project's CPU machines (no GPU): the CLI refuses there before anything is built.

    Raises:
        ProviderUnavailableError: no TensorRT EP.
        OutputExistsError: ``out_dir`` exists and not ``force``.
        ParityError: the engine's ids differ from the ONNX file's on the CPU EP (nothing is written).
    """
    from fcnedge.runtime.open import open_predictor
    from fcnedge.specs import Provider, ProviderSpec

    check_tensorrt()
    with staged_folder(Path(out_dir), force=force) as work:
        model = work / "model.onnx"
        shutil.copyfile(src, model)
        spec = ProviderSpec(providers=(Provider.TENSORRT,), trt_cache=work / "engine")
        trt = open_predictor(model, providers=spec, tile=shape)
        ref = open_predictor(src, providers="cpu", threads=threads, tile=shape)
        parity = agreements(trt, {"onnx_on_cpu": ref}, frames)
        on_cpu = worst(parity, "onnx_on_cpu")
        if on_cpu < PARITY_MIN:
            raise ParityError(
                f"the TensorRT engine agrees with the ONNX file on only {100 * on_cpu:.2f} % of a frame's pixels "
                f"(needs {100 * PARITY_MIN:.1f} %): nothing written"
            )
        engines = sorted(p.name for p in (work / "engine").iterdir()) if (work / "engine").is_dir() else []
        if not engines:
            raise ParityError("ONNX Runtime's TensorRT EP ran but cached no engine: nothing written")
        report = {
            "target": "tensorrt",
            "source": str(src),
            "files": ["model.onnx", *(f"engine/{e}" for e in engines)],
            "profile": {"min": [1, 3, 32, 32], "opt": [1, 3, *shape], "max": [8, 3, *shape]},
            "parity": parity,
            "worst_agreement_vs_onnx_on_cpu": on_cpu,
        }
        write_target_json(work, report, extras)
        del trt, ref
    return report
