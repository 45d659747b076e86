"""Test helpers importable from any test module (tests/ is on sys.path via conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest


def make_identity_onnx(path: Path, *, fixed_hw: tuple[int, int] | None = None, with_meta: bool = True) -> Path:
    """An ONNX model whose logits are its 3 input channels (K=3), built with onnx.helper (no torch)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from fcnedge.meta import META_KEY, ModelMeta

    h, w = fixed_hw if fixed_hw else ("H", "W")
    inp = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, h, w])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3, h, w])
    graph = helper.make_graph([helper.make_node("Identity", ["pixels"], ["scores"])], "identity", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_meta:
        meta = ModelMeta(arch="identity", backbone="none", num_classes=3, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
        model.metadata_props.add(key=META_KEY, value=meta.to_json())
    onnx.save(model, str(path))
    return path
