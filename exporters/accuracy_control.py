"""Accuracy-controlled int8 (in the spirit of NNCF's ``quantize_with_accuracy_control``): when the quantised model
loses more mIoU than allowed, rank the convolutions by the error each adds, return the worst to float a few at a
time, re-quantise and re-score, until the drop is within the limit (or the budget of float layers is spent).

A layer's added error is the relative error of its output (int8 model vs fp32 model, on calibration images)
minus the relative error already in its input: errors accumulate through the net, so the raw output error would
blame the last layers for everything upstream.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.meta import ModelMeta

log = logging.getLogger(__name__)


def _with_outputs(path: Path, names: list[str]) -> Any:
    """An in-memory ONNX Runtime session of ``path`` that also returns the tensors ``names``."""
    import onnx
    from onnx import TensorProto, helper

    from fcnedge.runtime.session import inspection_session

    model = onnx.load(str(path))
    have = {o.name for o in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names if n not in have)
    return inspection_session(model.SerializeToString(), optimize=False)  # keep every tensor by its name


def rank_layers(
    fp32_path: Path,
    int8_path: Path,
    images: list[NDArray[np.uint8]],
    meta: ModelMeta,
    shape: tuple[int, int],
    *,
    max_images: int = 4,
) -> list[tuple[str, float]]:
    """(Conv node name, added relative error) for every quantised convolution, worst first."""
    import onnx

    from fcnedge.exporters.quantize import calibration_inputs, graph_fixed_hw

    q = onnx.load(str(int8_path))
    fp32 = onnx.load(str(fp32_path))
    f_tensors = {o for n in fp32.graph.node for o in n.output} | {i.name for i in fp32.graph.input}
    convs = [
        (n.name, n.input[0], n.output[0])
        for n in q.graph.node
        if n.op_type == "Conv"
        and n.output[0] in f_tensors
        and any(i.endswith("DequantizeLinear_Output") for i in n.input)
    ]
    # the float tensor behind a DequantizeLinear input: X -> QuantizeLinear -> DequantizeLinear -> Conv
    producers = {o: n for n in q.graph.node for o in n.output}

    def float_source(t: str) -> str:
        for _ in range(2):
            n = producers.get(t)
            if n is None or n.op_type not in ("DequantizeLinear", "QuantizeLinear"):
                break
            t = n.input[0]
        return t

    pairs = [(name, float_source(inp), out) for name, inp, out in convs]
    tensors = sorted({t for _, a, b in pairs for t in (a, b) if t in f_tensors})
    sf, sq = _with_outputs(fp32_path, tensors), _with_outputs(int8_path, tensors)
    err: dict[str, list[float]] = {t: [] for t in tensors}
    for x in calibration_inputs(images[:max_images], meta, shape, fixed_hw=graph_fixed_hw(fp32)):
        of = dict(zip([o.name for o in sf.get_outputs()], sf.run(None, {sf.get_inputs()[0].name: x}), strict=True))
        oq = dict(zip([o.name for o in sq.get_outputs()], sq.run(None, {sq.get_inputs()[0].name: x}), strict=True))
        for t in tensors:
            a, b = of[t].astype(np.float64), oq[t].astype(np.float64)
            err[t].append(float(np.linalg.norm(a - b) / (np.linalg.norm(a) + 1e-12)))
    mean_err = {t: float(np.mean(v)) for t, v in err.items()}
    added = [(name, mean_err.get(out, 0.0) - mean_err.get(inp, 0.0)) for name, inp, out in pairs]
    return sorted(added, key=lambda kv: -kv[1])
