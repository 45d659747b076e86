"""Step 1: torch -> ONNX with dynamic N, H and W; input ``image`` (N,3,H,W) float32, output ``logits`` (N,K,H,W).

The TorchScript-based exporter is the default: on these conv nets it exports in well under a second, names the
dynamic axes N/H/W exactly as given (so the output's H/W provably equal the input's), writes no external data and
prints nothing. The dynamo exporter (``dynamo=True``) is offered for models TorchScript cannot trace; it takes
seconds, needs onnxscript, and expresses output sizes as formulas of the input's.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

from fcnedge.errors import ExportError, MissingDependencyError

log = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
SUPPORTED_OPSETS = range(13, 22)


def check_opset(opset: int) -> None:
    """Raise ExportError unless ``opset`` is one fcnedge exports to.

    Raises:
        ExportError: unsupported opset.
    """
    if opset not in SUPPORTED_OPSETS:
        raise ExportError(
            f"opset {opset} is not supported: use one of {SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1} "
            "(default 17)"
        )


def export_torch(model: Any, path: Path, *, opset: int, shape: tuple[int, int], dynamo: bool = False) -> Any:
    """Export ``model`` to ``path`` and return the loaded onnx.ModelProto.

    Raises:
        ExportError: unsupported opset or the exporter failed.
        MissingDependencyError: onnx (or onnxscript for dynamo) is not installed.
    """
    check_opset(opset)
    if dynamo and opset < 18:
        raise ExportError(f"the dynamo exporter writes opset 18 or later, not {opset}: pass opset 18 (or more)")
    import torch

    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx is not installed: pip install 'fcnedge[torch]'") from None
    model = model.eval()
    x = torch.zeros(1, 3, *shape)
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            if dynamo:
                _export_dynamo(model, x, path, opset)
            else:
                axes = {0: "N", 2: "H", 3: "W"}
                torch.onnx.export(
                    model,
                    (x,),
                    str(path),
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    opset_version=opset,
                    dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
                    dynamo=False,
                    do_constant_folding=True,
                )
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(f"the torch ONNX exporter needs {exc.name}: pip install {exc.name}") from None
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {str(exc)[:300]})") from exc
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    return proto


def _export_dynamo(model: Any, x: Any, path: Path, opset: int) -> None:
    import torch

    dims = {0: torch.export.Dim("N"), 2: torch.export.Dim("H"), 3: torch.export.Dim("W")}
    prog = torch.onnx.export(
        model,
        (x,),
        None,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        dynamic_shapes=(dims,),
        dynamo=True,
        external_data=False,
    )
    assert prog is not None
    prog.save(str(path), external_data=False)
