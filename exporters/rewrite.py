"""Step 3: replace each FCN upsampling ConvTranspose (kernel 2s, stride s, padding s/2) by a faster exact form.

Forms (all exact; the pipeline times the candidates that are exact for the weights it finds and keeps the fastest):

* ``resize``: the kernel is still the bilinear one (each class upsamples only itself). A ConvTranspose with a
  bilinear kernel is half-pixel bilinear interpolation with zeros outside the image, so
  Pad(1, zeros) -> Resize(linear x s, half_pixel) -> Slice(s from each side) [-> Add bias] is exact.
* ``depthwise``: only diagonal filters are nonzero: a grouped 3x3 Conv (groups=K, K*s*s outputs) -> DepthToSpace.
* ``dense``: any trained weights: a 3x3 Conv to K*s*s channels -> DepthToSpace(s). Output block (q, r) of a
  stride-s ConvTranspose reads only inputs q-1, q, q+1, so a 3x3 conv holds every tap exactly.
* ``dense-dcr``: ``dense`` with the Conv's output channels ordered for DepthToSpace's DCR mode (block offset
  major), the only mode NNAPI and CoreML's NeuralNetwork format take; never chosen by timing, only asked for
  (the ``ort-mobile`` target).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.specs import RewriteForm

log = logging.getLogger(__name__)


@dataclass
class RewriteReport:
    """What the pass changed: one entry per ConvTranspose."""

    rewrites: list[dict[str, Any]] = field(default_factory=list)


def bilinear_filter(s: int) -> NDArray[np.float64]:
    """The 2s x 2s bilinear kernel of the FCN transposed conv (numpy twin of models.fcn.bilinear_kernel)."""
    k = 2 * s
    f = 1 - np.abs(np.arange(k) - (s - 0.5)) / s
    return np.outer(f, f)


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def upsampling_stride(node: Any, weight: NDArray[np.float32]) -> int | None:
    """The stride s if ``node`` is an FCN-style upsampling ConvTranspose (k=2s, pad s/2), else None."""
    a = _attrs(node)
    strides = list(a.get("strides", [1, 1]))
    if len(strides) != 2 or strides[0] != strides[1] or strides[0] < 2 or strides[0] % 2:
        return None
    s = int(strides[0])
    ok = (
        weight.ndim == 4
        and weight.shape[2:] == (2 * s, 2 * s)
        and int(a.get("group", 1)) == 1
        and list(a.get("pads", [0] * 4)) == [s // 2] * 4
        and list(a.get("dilations", [1, 1])) == [1, 1]
        and not any(a.get("output_padding", []))
        and "output_shape" not in a
        and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    )
    return s if ok else None


# default preference when no timing is done: measured on this project's 2-core CPU (README, "upsampling forms")
PREFERENCE = (RewriteForm.DEPTHWISE, RewriteForm.RESIZE, RewriteForm.DENSE)


def exact_forms(weight: NDArray[np.float32], s: int, *, atol: float = 1e-6) -> list[RewriteForm]:
    """Every form that reproduces these ConvTranspose weights exactly, in :data:`PREFERENCE` order."""
    cin, cout = weight.shape[:2]
    forms = {RewriteForm.DENSE, RewriteForm.DENSE_DCR}
    if cin == cout:
        eye = np.eye(cin, dtype=bool)
        if not np.any(np.abs(weight[~eye]) > 0):
            forms.add(RewriteForm.DEPTHWISE)
            diag = weight[np.arange(cin), np.arange(cin)]
            if np.allclose(diag, bilinear_filter(s)[None], atol=atol, rtol=0):
                forms.add(RewriteForm.RESIZE)
    return [f for f in (*PREFERENCE, RewriteForm.DENSE_DCR) if f in forms]


def conv3x3_weight(weight: NDArray[np.float32], s: int) -> NDArray[np.float32]:
    """(Cin, Cout, 2s, 2s) ConvTranspose weight -> (Cout*s*s, Cin, 3, 3) Conv weight for DepthToSpace(s, CRD)."""
    cin, cout = weight.shape[:2]
    w3 = np.zeros((cout, s, s, cin, 3, 3), dtype=np.float32)
    r = np.arange(s)
    for dy in range(3):
        ty = (1 - dy) * s + r + s // 2
        vy = (ty >= 0) & (ty < 2 * s)
        for dx in range(3):
            tx = (1 - dx) * s + r + s // 2
            vx = (tx >= 0) & (tx < 2 * s)
            for ry in r[vy]:
                for rx in r[vx]:
                    w3[:, ry, rx, :, dy, dx] = weight[:, :, ty[ry], tx[rx]].T
    return w3.reshape(cout * s * s, cin, 3, 3)


def _const(graph: Any, name: str, value: NDArray[Any]) -> str:
    from onnx import numpy_helper

    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def _resize_nodes(graph: Any, node: Any, s: int, bias: NDArray[np.float32] | None) -> list[Any]:
    from onnx import helper

    p = node.name or node.output[0]
    x, y = node.input[0], node.output[0]
    pads = _const(graph, f"{p}/pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))
    scales = _const(graph, f"{p}/scales", np.array([1, 1, s, s], dtype=np.float32))
    starts = _const(graph, f"{p}/starts", np.array([s, s], dtype=np.int64))
    ends = _const(graph, f"{p}/ends", np.array([-s, -s], dtype=np.int64))
    axes = _const(graph, f"{p}/axes", np.array([2, 3], dtype=np.int64))
    sliced = y if bias is None else f"{p}/sliced"
    nodes = [
        helper.make_node("Pad", [x, pads], [f"{p}/padded"], name=f"{p}/Pad", mode="constant"),
        helper.make_node(
            "Resize",
            [f"{p}/padded", "", scales],
            [f"{p}/resized"],
            name=f"{p}/Resize",
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        ),
        helper.make_node("Slice", [f"{p}/resized", starts, ends, axes], [sliced], name=f"{p}/Slice"),
    ]
    if bias is not None:
        b = _const(graph, f"{p}/bias", bias.reshape(1, -1, 1, 1).astype(np.float32))
        nodes.append(helper.make_node("Add", [sliced, b], [y], name=f"{p}/AddBias"))
    return nodes


def _d2s_nodes(
    graph: Any, node: Any, s: int, weight: NDArray[np.float32], bias: NDArray[np.float32] | None, form: RewriteForm
) -> list[Any]:
    from onnx import helper

    p = node.name or node.output[0]
    cin, cout = weight.shape[:2]
    w3 = conv3x3_weight(weight, s)
    group = 1
    if form is RewriteForm.DENSE_DCR:  # channel (ry*s + rx)*K + c instead of c*s*s + ry*s + rx
        w3 = w3.reshape(cout, s * s, cin, 3, 3).transpose(1, 0, 2, 3, 4).reshape(cout * s * s, cin, 3, 3)
    if form is RewriteForm.DEPTHWISE:
        # keep only each class's own filter: (K*s*s, 1, 3, 3), groups=K
        w3 = w3.reshape(cout, s * s, cin, 3, 3)[np.arange(cout), :, np.arange(cin)].reshape(cout * s * s, 1, 3, 3)
        group = cout
    b = np.zeros(cout, np.float32) if bias is None else bias
    wname = _const(graph, f"{p}/w3", np.ascontiguousarray(w3))
    dcr = form is RewriteForm.DENSE_DCR
    bname = _const(graph, f"{p}/b3", (np.tile if dcr else np.repeat)(b.astype(np.float32), s * s))
    return [
        helper.make_node(
            "Conv",
            [node.input[0], wname, bname],
            [f"{p}/blocks"],
            name=f"{p}/Conv3x3",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            group=group,
        ),
        helper.make_node(
            "DepthToSpace",
            [f"{p}/blocks"],
            [node.output[0]],
            name=f"{p}/D2S",
            blocksize=s,
            mode="DCR" if dcr else "CRD",
        ),
    ]


def rewrite_upsampling(model: Any, *, force_form: RewriteForm | None = None) -> RewriteReport:
    """Rewrite every FCN upsampling ConvTranspose of ``model`` in place; returns what was done.

    Args:
        model: an onnx.ModelProto whose ConvTranspose weights are initializers.
        force_form: use this form where it is exact (the pipeline times the candidates); where it is not, the
            first exact form in :data:`PREFERENCE` is used.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    # the TorchScript exporter dedups equal initializers behind Identity nodes; see through them
    for n in graph.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
    report = RewriteReport()
    new_nodes: list[Any] = []
    for node in graph.node:
        if node.op_type != "ConvTranspose" or node.input[1] not in inits:
            new_nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        s = upsampling_stride(node, weight)
        if s is None:
            log.info("ConvTranspose %s is not an FCN upsampling; kept", node.name)
            new_nodes.append(node)
            continue
        bias = None
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in inits:
                new_nodes.append(node)
                continue
            bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
            if not np.any(bias):
                bias = None
        forms = exact_forms(weight, s)
        form = force_form if force_form in forms else forms[0]
        if form is RewriteForm.RESIZE:
            created = _resize_nodes(graph, node, s, bias)
        else:
            created = _d2s_nodes(graph, node, s, weight, bias, form)
        new_nodes.extend(created)
        report.rewrites.append(
            {
                "node": node.name,
                "nodes": [n.name for n in created],
                "stride": s,
                "channels": int(weight.shape[1]),
                "form": form.value,
                "exact_forms": [f.value for f in forms],
            }
        )
    del graph.node[:]
    graph.node.extend(new_nodes)
    drop_unused(graph)
    return report


def find_upsampling(model: Any) -> list[str]:
    """Names of the ConvTranspose nodes of ``model`` that are FCN upsamplings (what the rewrite would replace)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
    names = []
    for node in model.graph.node:
        if node.op_type == "ConvTranspose" and node.input[1] in inits:
            weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            if upsampling_stride(node, weight) is not None:
                names.append(node.name)
    return names


def drop_unused(graph: Any) -> None:
    """Remove Identity nodes nothing reads and initializers no node reads."""
    outputs = {o.name for o in graph.output}
    while True:
        read = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if n.op_type == "Identity" and n.output[0] not in read]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    read = {i for n in graph.node for i in n.input} | outputs
    keep = [i for i in graph.initializer if i.name in read]
    del graph.initializer[:]
    graph.initializer.extend(keep)
