"""``fcnedge models``: list the architectures."""

from __future__ import annotations

import typer

from fcnedge.cli.common import cli_errors, out


@cli_errors
def models() -> None:
    """List the architectures fcnedge builds, one line each."""
    from fcnedge.cli.common import require_torch

    require_torch("fcnedge models")
    from fcnedge.models.registry import ARCHS

    width = max(len(n) for n in ARCHS)
    for name, info in ARCHS.items():
        out.print(f"{name:<{width}}  {info.summary}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("models")(models)
