"""``--uint8-input``: the model takes (N, 3, H, W) uint8 RGB pixels and normalises them itself.

Two forms, chosen from the graph and the meta:

* ``dequantize`` (int8 QDQ models whose normalisation is one affine map for all three channels with a whole-number
  zero point, such as EfficientNet-Lite's (x - 127) / 128): the input QuantizeLinear is dropped and its
  DequantizeLinear reads the pixels as the quantised input, with scale 1 / (255 std) and zero point 255 mean. The
  float normalisation pass and the input quantisation disappear; the first QLinearConv reads the pixels.
* ``cast`` (any other model, float or int8): Cast(float) -> Sub(255 mean) -> Mul(1 / (255 std)) in front of the
  original graph, per channel; it replaces the runtime's numpy normalisation with the same arithmetic.

Either way the runtime pads partial tiles with the pixel value of the mean (round(255 mean)), the pixel that
normalises to (about) zero, as the float path pads with zero.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fcnedge.meta import ModelMeta
from fcnedge.runtime.predictor import PixelPlanes

ZP_TOLERANCE = 0.05  # pixels: 255 * mean must be this close to a whole number for the dequantize form
AGREEMENT_MIN = 0.999


def _initializers(graph: Any) -> dict[str, Any]:
    return {i.name: i for i in graph.initializer}


def _dequantize_form(graph: Any, meta: ModelMeta) -> tuple[Any, Any] | None:
    """(the input QuantizeLinear, its DequantizeLinear consumers) when the dequantize form is exact, else None."""
    from onnx import numpy_helper

    name = graph.input[0].name
    users = [n for n in graph.node if name in n.input]
    if len(users) != 1 or users[0].op_type != "QuantizeLinear":
        return None
    q = users[0]
    inits = _initializers(graph)
    if len(q.input) < 3 or q.input[2] not in inits or numpy_helper.to_array(inits[q.input[2]]).dtype != np.uint8:
        return None
    mean, std = np.asarray(meta.mean) * 255.0, np.asarray(meta.std) * 255.0
    if np.ptp(mean) > 1e-6 or np.ptp(std) > 1e-6 or abs(mean[0] - round(mean[0])) > ZP_TOLERANCE:
        return None
    dqs = [n for n in graph.node if q.output[0] in n.input]
    if not dqs or any(n.op_type != "DequantizeLinear" for n in dqs):
        return None
    return q, dqs


def to_uint8_input(proto: Any, meta: ModelMeta) -> dict[str, Any]:
    """Rewrite ``proto`` in place to take uint8 pixels; returns the facts for the export report."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    inp = graph.input[0]
    name = inp.name
    found = _dequantize_form(graph, meta)
    if found is not None:
        q, dqs = found
        scale = np.float32(1.0 / (255.0 * meta.std[0]))
        zp = PixelPlanes(meta.mean).pad_pixel[0]  # the runtime pads with this pixel: it must dequantise to 0
        s_name, z_name = f"{name}_u8_scale", f"{name}_u8_zero_point"
        graph.initializer.extend([numpy_helper.from_array(np.array(scale), s_name),
                                  numpy_helper.from_array(np.array(zp), z_name)])  # fmt: skip
        for dq in dqs:
            dq.input[0], dq.input[1], dq.input[2] = name, s_name, z_name
        graph.node.remove(q)
        still_used = {x for n in graph.node for x in n.input}
        for init in [i for i in graph.initializer if i.name in q.input[1:] and i.name not in still_used]:
            graph.initializer.remove(init)
        form = "dequantize"
        facts = {"scale": float(scale), "zero_point": int(zp)}
    else:
        norm = f"{name}_normalised"
        mean = (np.asarray(meta.mean, np.float32) * 255.0).reshape(1, 3, 1, 1)
        inv = (1.0 / (np.asarray(meta.std, np.float32) * 255.0)).reshape(1, 3, 1, 1).astype(np.float32)
        graph.initializer.extend([numpy_helper.from_array(mean, f"{name}_u8_mean"),
                                  numpy_helper.from_array(inv, f"{name}_u8_inv_std")])  # fmt: skip
        for n in graph.node:
            for i, x in enumerate(n.input):
                if x == name:
                    n.input[i] = norm
        nodes = [
            helper.make_node("Cast", [name], [f"{name}_f32"], name=f"{name}_u8_cast", to=TensorProto.FLOAT),
            helper.make_node("Sub", [f"{name}_f32", f"{name}_u8_mean"], [f"{name}_centred"], name=f"{name}_u8_sub"),
            helper.make_node("Mul", [f"{name}_centred", f"{name}_u8_inv_std"], [norm], name=f"{name}_u8_mul"),
        ]
        for node in reversed(nodes):
            graph.node.insert(0, node)
        form = "cast"
        facts = {}
    inp.type.tensor_type.elem_type = TensorProto.UINT8
    return {"form": form, **facts}


def step_uint8_input(run: Any, src: Path, threads: int) -> Path:
    """Write the uint8-input form of ``src`` beside it and prove it: both opened through the one seam, class ids
    on synthetic images at the verification shapes (tiled, padded) must agree on >= 99.9 % of pixels.

    Raises:
        ParityError: the ids disagree.
    """
    import onnx

    from fcnedge.data.synthetic import synthetic_images
    from fcnedge.errors import ParityError
    from fcnedge.exporters.export_run import save_proto
    from fcnedge.exporters.verify import verify_shapes
    from fcnedge.runtime.open import open_predictor

    t0 = time.perf_counter()
    proto = onnx.load(str(src))
    facts = to_uint8_input(proto, run.meta)
    dst = src.with_name(src.stem + ".u8.onnx")
    save_proto(proto, dst)
    shapes = verify_shapes(run.spec.export_shape, run.meta.stride)
    ref = open_predictor(src, threads=threads, tile=run.spec.export_shape)
    u8 = open_predictor(dst, threads=threads, tile=run.spec.export_shape)
    agreement = [float((ref.predict(img) == u8.predict(img)).mean()) for img in synthetic_images(shapes, seed=3)]
    facts["parity"] = [
        {"shape": list(shape), "argmax_agreement": a} for shape, a in zip(shapes, agreement, strict=True)
    ]
    run.report.uint8_input = facts
    worst = min(agreement)
    if worst < AGREEMENT_MIN:
        raise ParityError(
            f"the uint8-input model agrees with the float-input one on only {worst:.3%} of pixels "
            f"(< {AGREEMENT_MIN:.1%}): export without --uint8-input"
        )
    run.step("uint8_input", t0)
    return dst
