"""Shared CLI plumbing: the error boundary and console helpers. The CLI is the only layer that prints/exits."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from fcnedge.errors import FcnEdgeError

F = TypeVar("F", bound=Callable[..., Any])

console = Console(stderr=True)
out = Console(soft_wrap=True, highlight=False, markup=False)


def fail(message: str) -> typer.Exit:
    """Print one error line on stderr and return the exit-2 exception to raise."""
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code=2)


def cli_errors(func: F) -> F:
    """Turn an FcnEdgeError into one line on stderr and exit code 2; other exceptions keep their traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FcnEdgeError as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool) -> None:
    """INFO logs to stderr with -v, warnings otherwise. The native libraries' own loggers (OpenCV, ONNX Runtime)
    print only errors unless -v: their warnings would add lines before fcnedge's one-line error (the CLI owns
    the process; the library never touches these settings)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose:
        return
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError):
        pass
    try:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)  # errors only
    except ImportError:
        pass


def handle_sigterm() -> None:
    """Turn SIGTERM into SystemExit(143) in the main thread, so temporary files and folders are removed (atomic
    writes, export work folders) exactly as on Ctrl-C, instead of the process dying mid-write."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
