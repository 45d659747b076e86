"""``fcnedge data check PATH``: what a dataset holds and what would break training, before training."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from fcnedge.cli.common import cli_errors, out
from fcnedge.errors import DatasetError
from fcnedge.specs import DataFormat

data_app = typer.Typer(help="Look at a dataset before training on it.", no_args_is_help=True)


@data_app.command("check")
@cli_errors
def check(
    path: Annotated[Path, typer.Argument(help="A dataset file (.yaml) or a dataset folder.")],
    fmt: Annotated[DataFormat, typer.Option("--format", help="auto (recognised), camvid, voc or folder.")] = (
        DataFormat.AUTO
    ),
    num_classes: Annotated[Optional[int], typer.Option(help="Classes, for a folder without a dataset file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Pairs, unpaired files, sizes, ids per class (pixel share, images), the ignored share and every problem that
    would break training; exit 2 with a one-line reason if there is one."""
    from fcnedge.data.check import check_dataset
    from fcnedge.results import versioned

    reports = check_dataset(path, fmt, num_classes=num_classes)
    if as_json:
        doc = versioned("data-check", {"path": str(path), "splits": [asdict(r) for r in reports]})
        out.print_json(json.dumps(doc))
    else:
        for r in reports:
            _print_split(r)
    problems = [p for r in reports for p in r.problems]
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) would break training; the first: {problems[0]}")


def _print_split(r) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    sizes = ", ".join(f"{k} ({v})" for k, v in r.sizes.items()) or "-"
    out.print(f"{r.split}: {r.pairs} pairs; sizes {sizes}; ignored {100 * r.ignored_share:.1f} % of pixels")
    if r.classes:
        table = Table(title=f"{r.split}: classes")
        for c in ("id", "class", "% of labelled pixels", "images"):
            table.add_column(c, justify="left" if c == "class" else "right")
        for c in r.classes:
            table.add_row(str(c["id"]), c["name"], f"{100 * c['pixel_share']:.2f}", str(c["images"]))
        out.print(table)
    for w in r.warnings:
        out.print(f"warning: {w}")
    for p in r.problems:
        out.print(f"problem: {p}")


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to ``app``."""
    app.add_typer(data_app, name="data")
