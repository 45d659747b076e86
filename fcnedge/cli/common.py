"""Shared CLI plumbing: the error boundary and console helpers. The CLI is the only layer that prints/exits."""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import logging
import os
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


class OwnRecords(logging.Filter):
    """Passes fcnedge's own log records only (the default level: other libraries' lines only with -v)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "fcnedge" or record.name.startswith("fcnedge.")


def setup_logging(verbose: bool) -> None:
    """INFO logs to stderr with -v, warnings otherwise. The native libraries' own loggers (OpenCV, ONNX Runtime)
    print only errors unless -v: their warnings would add lines before fcnedge's one-line error (the CLI owns
    the process; the library never touches these settings). Without -v, what native code and child processes
    write straight to the process's stderr (libpng's CRC lines, FFmpeg's "moov atom not found", Ray's banners and
    C++ logs) is dropped (:func:`quiet_native_stderr`), and Python warnings (numpy's, say) become log records
    shown only with -v."""
    if not verbose:
        quiet_native_stderr()
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.INFO if verbose else logging.ERROR)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose:
        return
    for handler in logging.getLogger().handlers:  # other libraries' records (ONNX Runtime's quantiser, Ray) need -v
        if not any(isinstance(f, OwnRecords) for f in handler.filters):
            handler.addFilter(OwnRecords())
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


# What the environment, not fcnedge, gets wrong when a file is written: each errno with its fix.
_ENV_ERRNOS = {
    errno.ENOSPC: "free space or choose another output folder",
    errno.EDQUOT: "free space (the disk quota is full) or choose another output folder",
    errno.EFBIG: "choose an output on a file system that allows larger files",
    errno.ENAMETOOLONG: "choose a shorter output name (most file systems allow 255 bytes a name)",
    errno.EROFS: "choose an output folder on a writable file system",
    errno.EACCES: "choose a folder you may write to, or fix its permissions",
    errno.EPERM: "choose a folder you may write to, or fix its permissions",
    errno.EPIPE: "the reader of the output went away; rerun with the output going to a file",
    errno.EIO: "the device failed: check the disk or choose another output folder",
}


def os_error_line(exc: OSError) -> str | None:
    """One line for an OSError the environment caused (a full disk, a name too long, a read-only or closed
    output, standard output included), with the fix; None for any other OSError (a bug keeps its traceback)."""
    fix = _ENV_ERRNOS.get(exc.errno or -1)
    if fix is None:
        return None
    reason = exc.strerror or os.strerror(exc.errno or 0)
    if isinstance(exc, StdoutError):
        return f"could not write to standard output ({reason}): send it to a file or a device with space"
    what = exc.filename if exc.filename is not None else "an output"
    return f"could not write {what} ({reason}): {fix}"


class StdoutError(OSError):
    """Standard output could not be written (full, closed, a device error)."""


_SAVED_STDERR: list[int] = []


def quiet_native_stderr() -> None:
    """Point file descriptor 2 at /dev/null for native code and child processes, while Python's ``sys.stderr``
    (fcnedge's lines, its logging, the parser's errors, tracebacks) keeps writing to the real stderr through a
    duplicate. Only in a real process whose ``sys.stderr`` is descriptor 2 (not under a test runner's capture);
    :func:`restore_native_stderr` undoes it."""
    try:
        if _SAVED_STDERR or sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):  # a captured stream has no file descriptor
        return
    sys.stderr.flush()
    saved = os.dup(2)
    _SAVED_STDERR.append(saved)
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    atexit.register(restore_native_stderr)


def restore_native_stderr() -> None:
    """Undo :func:`quiet_native_stderr` (a no-op when it did nothing)."""
    if not _SAVED_STDERR:
        return
    saved = _SAVED_STDERR.pop()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    sys.stderr = sys.__stderr__


def quiet_loggers(*names: str) -> None:
    """Third-party Python loggers (Ray Data's progress and banners) at ERROR unless -v set the root to INFO."""
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)


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
