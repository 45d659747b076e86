"""The ``fcnedge`` Typer app: one module per command; heavy imports happen inside the commands."""

from __future__ import annotations

import typer

from fcnedge._version import __version__
from fcnedge.cli import bench_cmd, demo_cmd, export_cmd, info_cmd, models_cmd, predict_cmd, train_cmd

app = typer.Typer(
    name="fcnedge",
    help="Take an FCN segmentation model from PyTorch to the edge: train, export, predict, bench, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fcnedge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress (INFO) to stderr."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """fcnedge: FCN semantic segmentation from PyTorch to the edge."""
    from fcnedge.cli.common import setup_logging

    setup_logging(verbose)


for _module in (models_cmd, info_cmd, train_cmd, export_cmd, predict_cmd, bench_cmd, demo_cmd):
    _module.register(app)

__all__ = ["app"]
