"""``fcnedge info PATH``: the ModelMeta of a checkpoint or an exported .onnx model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from fcnedge.cli.common import cli_errors, out
from fcnedge.errors import ModelMetaError
from fcnedge.meta import ModelMeta


def read_any_meta(path: Path) -> tuple[ModelMeta, dict[str, Any]]:
    """Meta and extra facts of a .pt checkpoint or a .onnx model.

    Raises:
        ModelMetaError: missing, unreadable or meta-less file.
    """
    if not path.exists():
        raise ModelMetaError(f"{path} does not exist: check the path")
    if path.suffix == ".onnx":
        from fcnedge.runtime.session import read_onnx_meta

        meta, extra = read_onnx_meta(path)
        if meta is None:
            raise ModelMetaError(f"{path} carries no fcnedge metadata: export it with fcnedge export")
        return meta, extra
    from fcnedge.cli.common import require_torch

    require_torch("reading a .pt checkpoint")
    from fcnedge.models.checkpoint import read_checkpoint

    payload = read_checkpoint(path)
    meta = ModelMeta.from_dict(payload["meta"])
    n = sum(int(v.numel()) for v in payload["state_dict"].values())
    return meta, {"kind": "checkpoint", "parameters": n, "file_bytes": path.stat().st_size}


@cli_errors
def info(
    path: Annotated[Path, typer.Argument(help="A .pt checkpoint or an exported .onnx model.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Print the metadata of a checkpoint or an ONNX model."""
    meta, extra = read_any_meta(path)
    if as_json:
        out.print_json(json.dumps({"meta": meta.to_dict(), **extra}))
        return
    rows = {
        "architecture": meta.arch,
        "backbone": meta.backbone,
        "head": f"{meta.head} (upsampling {meta.upsampling})",
        "classes": f"{meta.num_classes}: {', '.join(meta.class_names)}",
        "ignore id": str(meta.ignore_index),
        "mean / std": f"{list(meta.mean)} / {list(meta.std)}",
        "stride": str(meta.stride),
        **{k: str(v) for k, v in extra.items()},
        **{f"provenance.{k}": str(v) for k, v in meta.provenance.items()},
    }
    w = max(len(k) for k in rows)
    for k, v in rows.items():
        out.print(f"{k:<{w}}  {v}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("info")(info)
