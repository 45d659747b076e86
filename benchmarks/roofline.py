"""What this machine can do: time one large convolution in ONNX Runtime, and count a model's FLOPs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np


def conv_model(cin: int = 256, cout: int = 256, k: int = 3) -> Any:
    """A one-Conv ONNX model (the roofline probe)."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(cout, cin, k, k)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, "H", "W"])
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[k, k], pads=[k // 2] * 4)
    model = helper.make_model(
        helper.make_graph([node], "probe", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model


PROBES = ((64, (160, 240)), (128, (80, 120)), (256, (40, 60)), (512, (20, 30)))


def conv_roofline(*, threads: int, runs: int = 10, rounds: int = 3) -> dict[str, Any]:
    """What one large convolution achieves in ONNX Runtime on CPU with ``threads`` threads: 3x3 C->C convs at the
    channel/size pairs of a stride-4..32 backbone, timed in interleaved rounds; the best median is the ceiling."""
    from fcnedge.runtime.session import inspection_session

    probes: list[tuple[int, tuple[int, int], Any, Any, list[float]]] = []
    for c, hw in PROBES:
        sess = inspection_session(conv_model(c, c).SerializeToString(), threads=threads)
        x = np.random.default_rng(1).normal(size=(1, c, *hw)).astype(np.float32)
        sess.run(None, {"x": x})
        probes.append((c, hw, sess, x, []))
    for _ in range(rounds):
        for _c, _hw, sess, x, ts in probes:
            for _ in range(runs):
                t = time.perf_counter()
                sess.run(None, {"x": x})
                ts.append(time.perf_counter() - t)
    best: dict[str, Any] = {"gflops": 0.0}
    for c, hw, _, _, ts in probes:
        flops = 2.0 * c * c * 9 * hw[0] * hw[1]
        sec = float(np.median(ts))
        if flops / sec / 1e9 > best["gflops"]:
            best = {
                "gflops": flops / sec / 1e9,
                "probe_ms": sec * 1e3,
                "probe_gflop": flops / 1e9,
                "probe": f"Conv3x3 {c}->{c} at {hw[0]}x{hw[1]}",
            }
    return best


def model_gflop(path: Path, shape: tuple[int, int]) -> float:
    """FLOPs (2 x MACs) of Conv/ConvTranspose/Gemm/MatMul nodes of an fp32 ONNX model at batch 1 and ``shape``."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, (1, 3, *shape), strict=True):
        d.ClearField("dim_param")
        d.dim_value = v
    model = shape_inference.infer_shapes(model)
    shapes = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in (*model.graph.value_info, *model.graph.output, *model.graph.input)
    }
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    total = 0.0
    for n in model.graph.node:
        if n.op_type == "Conv" and n.input[1] in inits and n.output[0] in shapes:
            co, ci_g, kh, kw = inits[n.input[1]]
            _, _, ho, wo = shapes[n.output[0]]
            total += 2.0 * co * ci_g * kh * kw * ho * wo
        elif n.op_type == "ConvTranspose" and n.input[1] in inits and n.input[0] in shapes:
            ci, co_g, kh, kw = inits[n.input[1]]
            _, _, hi, wi = shapes[n.input[0]]
            total += 2.0 * ci * co_g * kh * kw * hi * wi
    return total / 1e9
