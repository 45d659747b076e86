"""``fcnedge targets [MODEL]``: how much of a model each deployment target takes (NNAPI, CoreML, OpenVINO, CPU)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from fcnedge.cli.common import cli_errors, out


@cli_errors
def targets(
    model: Annotated[
        Optional[str], typer.Argument(help="An .onnx model, a .pt checkpoint or a bundled name; omit for the default.")
    ] = None,
    shape: Annotated[
        Optional[str],
        typer.Option(help="Check the model fixed to (1, 3, H, W), the tile an app will feed it (mobile NPUs need it)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Per target: nodes it runs, partitions, operators it refuses, and a verdict (before any conversion)."""
    from fcnedge.exporters.targets import readiness
    from fcnedge.results import versioned
    from fcnedge.sources import identify, onnx_path, require_onnx_format
    from fcnedge.specs import parse_hw

    hw = parse_hw(shape, what="--shape") if shape else None
    path = onnx_path(identify(model))
    require_onnx_format(path, "fcnedge targets")
    rows = readiness(path, hw)
    if as_json:
        doc = versioned("targets", {"model": str(path), "shape": shape, "targets": [r.to_json() for r in rows]})
        out.print_json(json.dumps(doc))
        return
    from rich.table import Table

    table = Table(title=f"{path.name}" + (f" fixed to 1x3x{hw[0]}x{hw[1]}" if hw else " (its own shapes)"))
    for col in ("target", "runtime", "nodes taken", "partitions", "refused operators", "verdict"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.target,
            r.runtime,
            f"{r.supported} of {r.nodes}",
            "-" if r.partitions is None else str(r.partitions),
            "; ".join(x for x in (", ".join(op.split(":")[-1] for op in r.unsupported_ops), r.note) if x) or "-",
            r.verdict,
        )
    from rich.console import Console

    Console(width=max(out.width, 150), highlight=False).print(table)  # never squeeze the table into 80 columns
    out.print("nodes: ONNX nodes after ORT's basic optimisation; OpenVINO counts the operations of its own graph")
    if hw is None and any(r.target == "nnapi" and r.verdict != "YES" for r in rows):
        out.print("mobile NPUs take fixed shapes: check the tile your app will feed with --shape HxW (e.g. 384x480)")


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("targets")(targets)
