"""A MODEL argument is recognised by what it is, not by its file name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fcnedge.catalog import get_weights
from fcnedge.errors import ConfigError, ModelMetaError
from fcnedge.exporters.torch_sources import load_torch
from fcnedge.sources import SourceKind, identify, onnx_path


@pytest.mark.parametrize("text", [None, "default", "-", "fcn_lite0_camvid"])
def test_bundled_names(text: str | None) -> None:
    src = identify(text)
    assert src.kind is SourceKind.BUNDLED and src.path == get_weights().path()
    assert onnx_path(src) == src.path


def test_files_are_recognised_by_content(tmp_path: Path, identity_onnx: Path, tiny_checkpoint: Path) -> None:
    onnx_named_pt = tmp_path / "model.pt"
    shutil.copy(identity_onnx, onnx_named_pt)
    ckpt_named_onnx = tmp_path / "weights.onnx"
    shutil.copy(tiny_checkpoint, ckpt_named_onnx)
    assert identify(onnx_named_pt).kind is SourceKind.ONNX
    assert identify(ckpt_named_onnx).kind is SourceKind.CHECKPOINT
    assert identify(str(identity_onnx)).kind is SourceKind.ONNX


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a folder, not a model file"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_bytes(b"hello world"), "neither an ONNX model nor a .pt checkpoint"),
        (lambda p: None, "does not exist"),
    ],
)
def test_bad_paths_say_what_they_are(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "m.onnx"
    make(p)
    with pytest.raises(ModelMetaError, match=message):
        identify(p)


def test_architecture_names_export_to_a_versioned_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyed on content and the exporter's format version: reused while both hold, exported anew when the
    format is bumped (an upgrade never serves a stale export)."""
    pytest.importorskip("torch")
    import fcnedge.exporters.torch_sources as ts

    monkeypatch.setenv("FCNEDGE_CACHE", str(tmp_path))
    src = identify("fcn_tiny")
    assert src.kind is SourceKind.ARCH
    with pytest.raises(ConfigError, match="needs --num-classes"):
        onnx_path(src)
    first = onnx_path(src, num_classes=3)
    assert first.parent == tmp_path and f"-x{ts.EXPORT_FORMAT}-" in first.name
    mtime = first.stat().st_mtime_ns
    assert onnx_path(src, num_classes=3) == first and first.stat().st_mtime_ns == mtime  # reused, same content
    monkeypatch.setattr(ts, "EXPORT_FORMAT", ts.EXPORT_FORMAT + 1)
    bumped = onnx_path(src, num_classes=3)
    assert bumped != first and bumped.is_file() and f"-x{ts.EXPORT_FORMAT}-" in bumped.name
    with pytest.raises(ConfigError, match="neither a file, a bundled model nor an architecture"):
        load_torch(identify("fcn_nope"), num_classes=3)
