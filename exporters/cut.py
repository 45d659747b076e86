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
    from onnx import helper, numpy_helper

    graph = model.graph
    out_name = graph.output[0].name
    node = next((n for n in graph.node if out_name in n.output), None)
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
    idx = list(graph.node).index(node)
    graph.node.remove(node)
    graph.node.insert(idx, helper.make_node("Identity", [node.input[0]], [out_name], name=f"{node.name}/moved"))
    dims = graph.output[0].type.tensor_type.shape.dim
    for d, name in zip(dims[2:], (f"H/{s}", f"W/{s}"), strict=False):
        d.Clear()
        d.dim_param = name
    drop_unused(graph)
    set_prop(model, RUNTIME_UPSAMPLING_KEY, json.dumps({"stride": s, "kind": "bilinear-transposed-conv"}))
    return {"node": node.name, "stride": s}


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
