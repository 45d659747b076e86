"""``fcnedge info MODEL``: what a model is, on one screen (``--all`` adds every raw metadata entry)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from fcnedge.cli.common import cli_errors, out
from fcnedge.errors import ModelMetaError
from fcnedge.meta import ModelMeta

SUMMARY_PROVENANCE = ("dataset", "val_miou", "best_epoch", "quantize", "export_opset", "storage", "command")


def read_any_meta(model: Optional[str]) -> tuple[ModelMeta, dict[str, Any]]:
    """Meta and extra facts of a bundled model, a .pt checkpoint or an .onnx model (recognised by content).

    Raises:
        ModelMetaError: missing, unreadable or meta-less file.
        MissingDependencyError: a checkpoint without torch.
    """
    from fcnedge.sources import SourceKind, identify, require_torch

    src = identify(model)
    if src.kind is SourceKind.ARCH:
        raise ModelMetaError(f"model {src.text} does not exist: pass a model file or a bundled name (fcnedge models)")
    if src.kind is SourceKind.CHECKPOINT:
        require_torch("reading a .pt checkpoint")
        from fcnedge.models.checkpoint import describe

        assert src.path is not None
        return describe(src.path)
    from fcnedge.runtime.session import read_onnx_meta

    assert src.path is not None
    meta, extra = read_onnx_meta(src.path)
    if meta is None:
        raise ModelMetaError(f"{src.path} carries no fcnedge metadata: export it with fcnedge export")
    if src.weights is not None:
        extra = {"bundled": src.weights.name, "licence": src.weights.licence, **extra}
    return meta, {"path": str(src.path), **extra}


def summary_rows(meta: ModelMeta, extra: dict[str, Any], *, everything: bool) -> dict[str, str]:
    """The lines ``fcnedge info`` prints: fcnedge's own facts; raw metadata (onnxsim.*, ...) only when asked."""
    rows = {
        "architecture": f"{meta.arch} (backbone {meta.backbone}, head {meta.head}, upsampling {meta.upsampling})",
        "classes": f"{meta.num_classes}: {', '.join(meta.class_names)}",
        "ignore id": str(meta.ignore_index),
        "input": f"RGB, mean {list(meta.mean)} std {list(meta.std)}, sides multiples of {meta.stride}",
    }
    if meta.scale != 1.0 or meta.tile is not None:
        tile = f"{meta.tile[0]}x{meta.tile[1]}" if meta.tile else "320x480"
        rows["inference"] = f"images resized by {meta.scale:g} (--scale), tiles of {tile} (--tile)"
    known = ("bundled", "licence", "path", "kind", "file_bytes", "parameters", "input", "output")
    for k in known:
        if k in extra:
            rows["graph input" if k == "input" else k] = str(extra[k])
    prov = (
        meta.provenance if everything else {k: meta.provenance[k] for k in SUMMARY_PROVENANCE if k in meta.provenance}
    )
    rows.update({f"provenance.{k}": str(v) for k, v in prov.items()})
    raw = {k: v for k, v in extra.items() if k not in known}
    if everything:
        rows.update({k: str(v) for k, v in raw.items()})
    elif raw:
        rows["more"] = f"{len(raw)} raw metadata entries and {len(meta.provenance) - len(prov)} provenance facts: --all"
    return rows


@cli_errors
def info(
    model: Annotated[
        Optional[str], typer.Argument(help="An .onnx model, a .pt checkpoint or a bundled name; omit for the default.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines (everything).")] = False,
    everything: Annotated[bool, typer.Option("--all", help="Also print every raw metadata entry.")] = False,
) -> None:
    """Print what a model is: architecture, classes, preprocessing, graph input/output, provenance."""
    meta, extra = read_any_meta(model)
    if as_json:
        out.print_json(json.dumps({"meta": meta.to_dict(), **extra}))
        return
    rows = summary_rows(meta, extra, everything=everything)
    w = max(len(k) for k in rows)
    for k, v in rows.items():
        out.print(f"{k:<{w}}  {v}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("info")(info)
