"""The ``fcnedge`` Typer app: one module per command; heavy imports happen inside the commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

import fcnedge.exporters  # noqa: F401  (registers the export of .pt checkpoints for the runtime's seam)
from fcnedge._version import __version__
from fcnedge.cli import (
    bench_cmd,
    data_cmd,
    demo_cmd,
    export_cmd,
    info_cmd,
    models_cmd,
    predict_cmd,
    targets_cmd,
    train_cmd,
    tune_cmd,
)
from fcnedge.cli.common import StdoutError, os_error_line, restore_native_stderr


class OneLineErrors(TyperGroup):
    """The app's command group: a usage error (an unknown choice, a missing argument, a bad number) is one line on
    stderr and exit code 2, like every fcnedge error, instead of a usage box."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            try:
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                if standalone_mode:
                    _flush_stdout()  # a full or closed stdout fails here, inside the one-line boundary
            except OSError as exc:  # the environment: a full disk, a name too long, a read-only folder
                if exc.filename is None and _from_stdout(exc):
                    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter's last flush would fail)
                    exc = StdoutError(exc.errno, exc.strerror)
                line = os_error_line(exc)
                if line is None or not standalone_mode:
                    raise
                sys.stderr.write(f"error: {line}\n")
                sys.exit(2)
            except Exception as exc:  # the CLI parser's own exceptions carry exit_code and format_message
                if not (standalone_mode and hasattr(exc, "exit_code") and hasattr(exc, "format_message")):
                    raise
                if type(exc).__name__ == "NoArgsIsHelpError":  # `fcnedge` alone: the help, as asked
                    sys.stderr.write(exc.format_message() + "\n")
                    sys.exit(0)
                ctx = getattr(exc, "ctx", None)
                where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
                text = " ".join(exc.format_message().split())
                sys.stderr.write(f"error: {text}{where}\n")
                sys.exit(exc.exit_code)
        finally:
            restore_native_stderr()  # what setup_logging quieted, for a caller that goes on in this process
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _from_stdout(exc: OSError) -> bool:
    """Whether ``exc`` was raised writing to stdout: a frame of its traceback holds stdout (or a console
    writing to it) as a local."""
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if value is sys.stdout or getattr(value, "file", None) is sys.stdout:
                return True
        tb = tb.tb_next
    return False


def _flush_stdout() -> None:
    """Flush stdout; when that fails, point it at /dev/null (so the interpreter's last flush does not fail
    again) and raise the failure as a write to standard output.

    Raises:
        StdoutError: stdout could not be written.
    """
    try:
        sys.stdout.flush()
    except OSError as exc:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (open until the process ends)
        raise StdoutError(exc.errno, exc.strerror) from None


app = typer.Typer(
    cls=OneLineErrors,
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
    from fcnedge.cli.common import handle_sigterm, setup_logging

    setup_logging(verbose)
    handle_sigterm()


for _module in (
    models_cmd,
    info_cmd,
    data_cmd,
    train_cmd,
    export_cmd,
    predict_cmd,
    bench_cmd,
    tune_cmd,
    demo_cmd,
    targets_cmd,
):
    _module.register(app)

__all__ = ["app"]
