"""Step 2: simplify with onnxsim, falling back to onnxslim; H and W must stay symbolic afterwards."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fcnedge.errors import ExportError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimplifyResult:
    """Which tool simplified the graph, and any failure of the preferred one."""

    model: Any
    tool: str
    failure: str | None = None


def _dims(value_info: Any) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def check_dynamic_hw(model: Any) -> None:
    """Raise ExportError unless input and output H/W (axes 2, 3) are symbolic.

    Raises:
        ExportError: a fixed H or W.
    """
    for vi in (*model.graph.input, *model.graph.output):
        dims = _dims(vi)
        if len(dims) != 4 or not all(isinstance(d, str) and d for d in dims[2:]):
            raise ExportError(f"{vi.name} has shape {dims} after simplification: H and W must stay dynamic")


def _onnxsim(model: Any) -> Any:
    import onnxsim

    simplified, ok = onnxsim.simplify(model, check_n=0)
    if not ok:
        raise RuntimeError("onnxsim could not validate the simplified model")
    return simplified


def _onnxslim(model: Any) -> Any:
    import onnxslim

    return onnxslim.slim(model)


def simplify(model: Any) -> SimplifyResult:
    """Simplify ``model`` with onnxsim; if that fails or is absent, with onnxslim.

    Raises:
        ExportError: both failed, or H/W lost their symbols.
    """
    failure = None
    for tool, fn in (("onnxsim", _onnxsim), ("onnxslim", _onnxslim)):
        try:
            out = fn(model)
        except Exception as exc:  # ImportError or a simplifier bug: report and try the next
            failure = f"{tool}: {type(exc).__name__}: {str(exc)[:200]}"
            log.warning("%s failed, trying the next simplifier (%s)", tool, failure)
            continue
        check_dynamic_hw(out)
        return SimplifyResult(out, tool, failure)
    raise ExportError(f"simplification failed ({failure}): install onnxsim or onnxslim, or pass --no-simplify")
