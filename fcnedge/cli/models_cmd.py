"""``fcnedge models``: the bundled models (always) and the architectures (with torch installed)."""

from __future__ import annotations

import typer

from fcnedge.cli.common import cli_errors, out


@cli_errors
def models() -> None:
    """List the models shipped in the package and the architectures fcnedge builds, one line each."""
    from fcnedge.catalog import Catalog
    from fcnedge.sources import torch_available

    out.print("bundled models (fcnedge predict/demo/eval/bench NAME; 'default' is the first):")
    for m in Catalog:
        if m.name == "DEFAULT":
            continue
        w = m.value
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in w.metrics)
        out.print(f"  {w.name}  {w.summary}; {metrics}; licence: {w.licence}", highlight=False, soft_wrap=True)
        _scales(w.name)
    if not torch_available():
        out.print("architectures: listed with PyTorch installed (pip install 'fcnedge[torch]')")
        return
    from fcnedge.models.registry import ARCHS

    out.print("architectures (fcnedge train --arch NAME, fcnedge export NAME --num-classes K):")
    width = max(len(n) for n in ARCHS)
    for name, info in ARCHS.items():
        out.print(f"  {name:<{width}}  {info.summary}", highlight=False, soft_wrap=True)


def _scales(name: str) -> None:
    """Val mIoU at each measured scale, with this machine's ms per 352x480 frame where --fps has timed it."""
    from fcnedge.runtime.budget import known_timings

    cands = [c for c in known_timings((352, 480)) if c.model == name]
    if not cands:
        return
    cells = []
    for scale in sorted({c.scale for c in cands}):
        at = [c for c in cands if c.scale == scale]
        times = ", ".join(f"{c.engine} {c.ms:.1f} ms" for c in at if c.ms is not None)
        cells.append(f"{scale:g}: mIoU {at[0].miou:.4f}" + (f" ({times})" if times else ""))
    timed = any(c.ms is not None for c in cands)
    note = "ms per 352x480 frame on this machine" if timed else "not timed here yet: the first demo --fps times them"
    out.print(f"    val mIoU by inference scale ({note}): " + "; ".join(cells), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("models")(models)
