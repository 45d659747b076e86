"""Move the FCN's final upsampling out of the graph into the runtime (``--runtime-upsampling``).

The last ConvTranspose of an FCN with a bilinear kernel is half-pixel bilinear interpolation of the zero-padded
stride-s logits (see :mod:`fcnedge.exporters.rewrite`). In the graph it is float work at full resolution even in an
int8 model; the runtime does the same interpolation with OpenCV on the small stride-s logits (its exact
``cv2.resize`` half-pixel rule), so the model ends at stride s and the tail costs a fraction. Only a bilinear,
bias-free final upsampling moves; anything else is an error, never an approximation.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fcnedge.errors import ExportError
from fcnedge.exporters.onnx_meta import set_prop
from fcnedge.exporters.rewrite import drop_unused, exact_forms, upsampling_stride
from fcnedge.meta import IDS_OUTPUT, RUNTIME_UPSAMPLING_KEY
from fcnedge.specs import RewriteForm


def move_final_upsampling(model: Any) -> dict[str, Any]:
    """Remove the ConvTranspose that produces the graph's output and record its stride in the model.

    Returns:
        What moved: the node name and the stride.

    Raises:
        ExportError: the output is not produced by a bilinear, bias-free FCN upsampling.
    """
    from onnx import numpy_helper

    graph = model.graph
    out_name = graph.output[0].name
    node = next((n for n in graph.node if out_name in n.output), None)
    rewritten = _resize_form(graph, node)
    if rewritten is not None:  # a file already exported with the exact Resize rewrite (the bundled int8 file)
        nodes, stride, x = rewritten
        return _replace_tail(model, nodes, x, stride)
    inits = {i.name: i for i in graph.initializer}
    for n in graph.node:  # the TorchScript exporter dedups equal initializers behind Identity nodes
        if n.op_type == "Identity" and n.input and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
    if node is None or node.op_type != "ConvTranspose" or node.input[1] not in inits:
        raise ExportError(
            "--runtime-upsampling needs a model whose output comes from its upsampling ConvTranspose "
            f"(found {node.op_type if node is not None else 'nothing'}): export without it"
        )
    weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
    s = upsampling_stride(node, weight)
    bias = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] in inits else None
    if s is None or RewriteForm.RESIZE not in exact_forms(weight, s) or (bias is not None and np.any(bias)):
        raise ExportError(
            "--runtime-upsampling moves only a frozen bilinear final upsampling without bias (train with "
            "--freeze-upsampling); this model's is trained: export without --runtime-upsampling"
        )
    return _replace_tail(model, [node], node.input[0], s)


def _replace_tail(model: Any, nodes: list[Any], x: str, s: int) -> dict[str, Any]:
    """Replace ``nodes`` (the final upsampling, ending in the graph output) by Identity(x): the graph then ends at
    the stride-s logits, and the model records that the runtime upsamples by s."""
    from onnx import helper

    graph = model.graph
    out_name = graph.output[0].name
    idx = min(list(graph.node).index(n) for n in nodes)
    for n in nodes:
        graph.node.remove(n)
    graph.node.insert(idx, helper.make_node("Identity", [x], [out_name], name=f"{nodes[0].name}/moved"))
    dims = graph.output[0].type.tensor_type.shape.dim
    for d, name in zip(dims[2:], (f"H/{s}", f"W/{s}"), strict=False):
        d.Clear()
        d.dim_param = name
    drop_unused(graph)
    set_prop(model, RUNTIME_UPSAMPLING_KEY, json.dumps({"stride": s, "kind": "bilinear-transposed-conv"}))
    return {"node": nodes[0].name, "stride": s}


def _resize_form(graph: Any, last: Any) -> tuple[list[Any], int, str] | None:
    """``(nodes, s, input)`` when the graph ends in the exporter's exact Resize form of a bilinear transposed conv,
    Pad(1, zeros) -> Resize(linear x s, half_pixel) -> Slice(s from each side), with nothing else reading the
    intermediate tensors; else None."""
    from onnx import numpy_helper

    if last is None or last.op_type != "Slice" or len(last.input) < 4:
        return None
    by_out = {o: n for n in graph.node for o in n.output}
    protos = {i.name: i for i in graph.initializer}

    def const(name: str) -> Any:  # only the few small tensors read here, not every weight
        return numpy_helper.to_array(protos[name]) if name in protos else None

    resize = by_out.get(last.input[0])
    pad = by_out.get(resize.input[0]) if resize is not None else None
    if resize is None or pad is None or resize.op_type != "Resize" or pad.op_type != "Pad":
        return None
    attrs = {a.name: a for a in resize.attribute}
    scales = const(resize.input[2]) if len(resize.input) > 2 else None
    if (
        attrs.get("mode") is None
        or attrs["mode"].s != b"linear"
        or attrs.get("coordinate_transformation_mode") is None
        or attrs["coordinate_transformation_mode"].s != b"half_pixel"
        or scales is None
        or scales.shape != (4,)
        or list(scales[:2]) != [1, 1]
        or scales[2] != scales[3]
        or scales[2] < 2
        or scales[2] != int(scales[2])
    ):
        return None
    s = int(scales[2])
    pad_mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
    pads = const(pad.input[1]) if len(pad.input) > 1 else None
    value = const(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else np.zeros(1)
    starts, ends, axes = (const(last.input[i]) for i in (1, 2, 3))
    steps = const(last.input[4]) if len(last.input) > 4 and last.input[4] else np.ones(2)
    ok = (
        pad_mode == b"constant"
        and pads is not None
        and list(pads) == [0, 0, 1, 1, 0, 0, 1, 1]
        and value is not None
        and not np.any(value)
        and starts is not None
        and ends is not None
        and axes is not None
        and list(starts) == [s, s]
        and list(ends) == [-s, -s]
        and list(axes) == [2, 3]
        and steps is not None
        and list(steps) == [1, 1]
    )
    readers = [n for n in graph.node if set(n.input) & {pad.output[0], resize.output[0]}]
    if not ok or len(readers) != 2:
        return None
    return [pad, resize, last], s, pad.input[0]


def add_ids_output(model: Any) -> list[str]:
    """Append ArgMax over the classes and a Cast to uint8 as a second output ``ids`` (N, H, W): for a whole
    image the runtime asks for it alone, so neither the full-resolution logits nor a separate argmax pass leave
    the graph. Returns the names of the nodes added (kept in float by int8).

    Raises:
        ExportError: the graph already has a second output.
    """
    from onnx import TensorProto, helper

    graph = model.graph
    if len(graph.output) != 1:
        raise ExportError(f"--ids-output needs a one-output graph, found {len(graph.output)} outputs")
    logits = graph.output[0].name
    nodes = [
        helper.make_node("ArgMax", [logits], ["ids_int64"], axis=1, keepdims=0, name="fcnedge/ids/ArgMax"),
        helper.make_node("Cast", ["ids_int64"], [IDS_OUTPUT], to=TensorProto.UINT8, name="fcnedge/ids/Cast"),
    ]
    graph.node.extend(nodes)
    dims = [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim]
    graph.output.append(helper.make_tensor_value_info(IDS_OUTPUT, TensorProto.UINT8, [dims[0], dims[2], dims[3]]))
    return [n.name for n in nodes]
