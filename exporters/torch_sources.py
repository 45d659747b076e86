"""The torch side of a MODEL argument: a checkpoint, an architecture name (untrained, seeded) or a bundled model
as a torch module, and its ONNX export cached on first use. Imports torch only on use; registers the export with
:mod:`fcnedge.sources` when ``fcnedge.exporters`` is imported."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fcnedge.errors import ConfigError
from fcnedge.meta import ModelMeta
from fcnedge.sources import ModelSource, SourceKind, cache_dir, digest, require_torch

log = logging.getLogger(__name__)

# What an export is: bump when the exporter writes a different graph or meta for the same model (a new rewrite,
# opset, meta schema). Cached exports and fast forms are keyed on it.
EXPORT_FORMAT = 2

__all__ = ["export_cached", "load_torch"]


def load_torch(src: ModelSource, *, num_classes: int | None = None, head: str | None = None) -> tuple[Any, ModelMeta]:
    """The torch model and meta of a checkpoint, an architecture (untrained, seeded) or a bundled model.

    Raises:
        MissingDependencyError: torch is not installed.
        ConfigError: an ONNX file, an architecture without num_classes, or an unknown name.
        CheckpointError: unreadable checkpoint.
    """
    require_torch(f"model {src.text!r} ({src.kind.value})")
    if src.kind is SourceKind.ONNX:
        raise ConfigError(f"{src.path} is an ONNX model: this command takes a .pt checkpoint or an architecture name")
    from fcnedge.models.checkpoint import load_checkpoint

    if src.weights is not None:
        return load_checkpoint(src.weights.path("checkpoint"))
    if src.kind is SourceKind.CHECKPOINT:
        assert src.path is not None
        return load_checkpoint(src.path)
    return _untrained(src.text, num_classes=num_classes, head=head)


def _untrained(name: str, *, num_classes: int | None, head: str | None) -> tuple[Any, ModelMeta]:
    import torch

    from fcnedge.models.registry import ARCHS, build, default_meta

    if name not in ARCHS:
        raise ConfigError(
            f"{name!r} is neither a file, a bundled model nor an architecture: pass an .onnx model, a .pt "
            f"checkpoint, default, or one of {', '.join(ARCHS)}"
        )
    if num_classes is None:
        raise ConfigError(f"architecture {name!r} needs --num-classes (e.g. --num-classes 21)")
    log.warning("%s is untrained (seeded random weights): figures are for latency only", name)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same untrained model every time, so its export can be cached
        model = build(name, num_classes=num_classes, head=head).eval()
    return model, default_meta(name, num_classes=num_classes, head=head)


def export_cached(src: ModelSource, *, num_classes: int | None = None, head: str | None = None) -> Path:
    """A checkpoint or architecture exported to ONNX in the cache, keyed by its content and the exporter's
    format version (:data:`EXPORT_FORMAT`), reused when it is there: an fcnedge whose exports differ bumps the
    format, so an upgrade never serves a stale export, and one whose exports do not keeps the cache.

    Raises:
        MissingDependencyError, ConfigError, CheckpointError: see :func:`load_torch`.
        ExportError: the export failed.
    """
    key = digest(src, num_classes=num_classes, head=head)
    out = cache_dir() / f"{src.label}-{key}-x{EXPORT_FORMAT}-fp32.onnx"
    if out.is_file():
        log.info("using the cached export %s", out)
        return out
    model, meta = load_torch(src, num_classes=num_classes, head=head)
    from fcnedge.exporters.pipeline import run
    from fcnedge.fsutil import writing
    from fcnedge.specs import ExportSpec

    with writing(f"the export cache {out.parent} (set FCNEDGE_CACHE to a writable folder)"):
        out.parent.mkdir(parents=True, exist_ok=True)
    log.warning("exporting %s to %s (first use; cached for next time)", src.text, out)
    run(ExportSpec(output=out, force=True), model, meta)
    return out
