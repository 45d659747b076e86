"""Atomic file writes: a temp file in the target folder, then a rename."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fcnedge.errors import ConfigError, OutputExistsError


def check_output(path: Path, *, force: bool) -> None:
    """Check that ``path`` may be written.

    Raises:
        OutputExistsError: it exists and ``force`` is false.
        ConfigError: its folder does not exist or is not writable.
    """
    if path.exists() and not force:
        raise OutputExistsError(f"output {path} exists: pass --force to replace it or choose another path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"output folder {parent} does not exist: create it first")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"output folder {parent} is not writable: choose a writable folder")


def check_folder_writable(folder: Path, *, what: str) -> None:
    """Check, without creating anything, that ``folder`` is (or can be created as) a writable folder.

    Raises:
        ConfigError: it is a file, or its nearest existing ancestor is not a writable folder.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {folder} is a file, not a folder: pass a folder")
    probe = folder
    while not probe.exists():
        probe = probe.parent if probe.parent != probe else Path(".")
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {folder} cannot be written ({probe} is not a writable folder): choose another")


def prepare_report_folder(folder: Path, names: tuple[str, ...], *, force: bool) -> None:
    """Check, before any work and without creating anything, that the report files ``names`` can be written
    into ``folder``.

    Raises:
        OutputExistsError: a report exists and ``force`` is false.
        ConfigError: the folder is a file or cannot be written.
    """
    check_folder_writable(folder, what="--out")
    for name in names:
        if (folder / name).exists() and not force:
            raise OutputExistsError(
                f"output {folder / name} exists: pass --force to replace it or choose another --out"
            )


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it onto ``path``, on failure remove it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)


def finite_json(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None, so the JSON written is valid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def atomic_write_json(path: Path, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON (no NaN/Infinity tokens; non-finite numbers become null) atomically."""
    atomic_write_text(path, json.dumps(finite_json(obj), indent=indent, allow_nan=False, default=str))
