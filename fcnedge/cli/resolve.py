"""Turning a MODEL argument into something runnable: a checkpoint, an architecture name, an .onnx file or nothing
(the bundled default)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from fcnedge.errors import ConfigError
from fcnedge.meta import ModelMeta

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where fcnedge caches exported models (``$FCNEDGE_CACHE`` or ``~/.cache/fcnedge``)."""
    root = os.environ.get("FCNEDGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "fcnedge")
    return Path(root)


def load_torch_model(model: str | None, *, num_classes: int | None = None, head: str = "32s") -> tuple[Any, ModelMeta]:
    """A torch model and its meta from a checkpoint path, an architecture name, or None (bundled default).

    Raises:
        ConfigError: an architecture name without --num-classes, or an unknown name that is not a file.
        CheckpointError: unreadable checkpoint.
        MissingDependencyError: torch is not installed.
    """
    from fcnedge.cli.common import require_torch

    require_torch("this command")
    from fcnedge.models import build, default_meta, load_checkpoint, load_default
    from fcnedge.models.registry import ARCHS

    if model is None:
        return load_default()
    if model in ARCHS:
        if num_classes is None:
            raise ConfigError(f"architecture {model!r} needs --num-classes (e.g. --num-classes 21)")
        return build(model, num_classes=num_classes, head=head).eval(), default_meta(
            model, num_classes=num_classes, head=head
        )
    path = Path(model)
    if path.suffix == ".onnx":
        raise ConfigError(f"{path} is already ONNX: this command takes a .pt checkpoint or an architecture name")
    if not path.exists() and path.suffix != ".pt":
        raise ConfigError(
            f"{model!r} is neither a file nor an architecture: pass a .pt checkpoint or one of {', '.join(ARCHS)}"
        )
    return load_checkpoint(path)


def default_onnx() -> Path:
    """The bundled default as ONNX: fp32 exported on first use into the cache (keyed by the checkpoint's hash) when
    torch is installed; on an edge install without torch, the int8 model shipped in the package.

    Raises:
        MissingDependencyError: neither torch nor the shipped int8 model is available.
    """
    import hashlib

    from fcnedge.errors import MissingDependencyError
    from fcnedge.models.default import default_checkpoint_path, shipped_int8_path

    try:
        import torch  # noqa: F401
    except ImportError:
        shipped = shipped_int8_path()
        if shipped is None:
            raise MissingDependencyError(
                "exporting the bundled default needs PyTorch: pip install 'fcnedge[torch]', or pass an .onnx model"
            ) from None
        log.warning("torch is not installed: using the shipped int8 default model %s", shipped.name)
        return shipped
    ckpt = default_checkpoint_path()
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()[:12]
    out = cache_dir() / f"default-{digest}-fp32.onnx"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    from fcnedge.exporters.pipeline import run
    from fcnedge.models import load_default
    from fcnedge.specs import ExportSpec

    log.warning("exporting the bundled default model to %s (first use)", out)
    model, meta = load_default()
    run(ExportSpec(output=out), model, meta)
    return out
