"""Atomic file writes: a temp file in the target folder, then a rename.

Every temporary file or folder fcnedge makes beside an output carries ``fcnedge-tmp-<pid>-`` in its name. A run
that is killed (SIGKILL, power loss) cannot clean up after itself, so commands sweep such leftovers of processes
that no longer exist from their output folders before they start; SIGTERM and Ctrl-C clean up at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fcnedge.errors import ConfigError, OutputError, OutputExistsError

log = logging.getLogger(__name__)


TMP_MARK = "fcnedge-tmp-"
_TMP_RE = re.compile(re.escape(TMP_MARK) + r"(\d+)-")


def tmp_prefix(name: str = "") -> str:
    """The recognisable prefix of this process's temporary files and folders; the final name is cut to 64
    characters in it, so a final name that fits the file system (255 bytes) never gets a temporary one that
    does not."""
    return f".{name[:64] + '.' if name else ''}{TMP_MARK}{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale(folder: Path) -> list[Path]:
    """Remove fcnedge temporaries in ``folder`` whose process no longer exists; returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP_RE.search(p.name)
        if m is None or not p.name.startswith(".") or _alive(int(m.group(1))):
            continue
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p)
        except OSError:
            continue
    if removed:
        log.warning("removed %d leftover temporary file(s) of killed fcnedge runs in %s", len(removed), folder)
    return removed


def check_output(path: Path, *, force: bool, sweep: bool = True) -> None:
    """Check that ``path`` may be written (sweeping leftovers of killed runs from its folder first).

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
    if sweep:
        sweep_stale(parent)


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
    if folder.is_dir():
        sweep_stale(folder)


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
def atomic_path(path: Path, *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success move it onto ``path``, on failure remove it.

    With ``exclusive`` the finished file is published only if ``path`` does not exist at that moment (a hard
    link, which the file system creates or refuses atomically), so of two processes writing the same output the
    second is refused instead of silently replacing the first one's file.

    Raises:
        OutputExistsError: ``exclusive`` and ``path`` appeared meanwhile (another writer claimed it).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(path.name), suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        if exclusive:
            publish_exclusive(tmp_path, path)
        else:
            os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def publish_exclusive(tmp: Path, path: Path) -> None:
    """Move the finished ``tmp`` onto ``path`` only if ``path`` does not exist, atomically.

    Raises:
        OutputExistsError: ``path`` exists (another process wrote it since the up-front check).
    """
    taken = OutputExistsError(
        f"output {path} was written by another process meanwhile: kept it; pass --force to replace it"
    )
    try:
        os.link(tmp, path)  # create-exclusive with the whole content: never a half-written or empty claim
    except FileExistsError:
        raise taken from None
    except OSError:  # a file system without hard links (FAT, some network mounts): claim the name, then fill it
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            raise taken from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def check_not_inputs(targets: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Refuse any output that is one of the inputs: the same path, a symlink or hard link to it, or an input
    reached through a symlinked folder (``--force`` does not lift this: replacing the input loses it).

    Raises:
        ConfigError: the first output that would replace an input, named with the input.
    """
    by_path: dict[Path, Path] = {}
    by_inode: dict[tuple[int, int], Path] = {}
    for p in inputs:
        by_path[Path(p).resolve()] = Path(p)
        with contextlib.suppress(OSError):
            st = os.stat(p)
            by_inode[(st.st_dev, st.st_ino)] = Path(p)
    for t in targets:
        hit = by_path.get(Path(t).resolve())
        if hit is None:
            with contextlib.suppress(OSError):
                st = os.stat(t)
                hit = by_inode.get((st.st_dev, st.st_ino))
        if hit is not None:
            raise ConfigError(f"output {t} would replace the input {hit} (--force or not): choose another -o folder")


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


def check_output_folder(out_dir: Path, *, force: bool) -> None:
    """Raise unless ``out_dir`` may be written as a folder (callers check before slow work, then build it with
    :func:`staged_folder`, which checks again).

    Raises:
        OutputExistsError: it exists and not ``force``.
        ConfigError: it is a file.
    """
    if out_dir.exists() and not force:
        raise OutputExistsError(f"{out_dir} exists: pass --force to replace it, or choose another -o")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file and a folder is to be written there: choose another -o")


def work_dir_for(out_dir: Path) -> Path:
    """A new hidden folder beside ``out_dir`` to build it in (renamed into place once proven), with the
    permissions a plain ``mkdir`` would give (mkdtemp's 0700 would follow it to its final name)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)
    return work


@contextlib.contextmanager
def staged_folder(out_dir: Path, *, force: bool) -> Iterator[Path]:
    """Build a folder in a work folder beside ``out_dir``; only when the block finishes does it replace
    ``out_dir`` (one rename; with ``force`` an old folder goes only then). An error leaves nothing behind.

    Raises:
        OutputExistsError: ``out_dir`` exists and not ``force``.
    """
    out_dir = Path(out_dir)
    check_output_folder(out_dir, force=force)
    work = work_dir_for(out_dir)
    try:
        yield work
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(work, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def temp_dir(parent: Path, what: str) -> Iterator[Path]:
    """A recognisable temporary folder in ``parent`` (same file system as the output: renames are atomic), also
    used as Python's temp dir meanwhile so libraries that make their own (ONNX Runtime's quantiser) make them
    inside it; removed on exit, error, SIGTERM or Ctrl-C."""
    with tempfile.TemporaryDirectory(prefix=tmp_prefix() + what + "-", dir=parent) as tmp:
        old = tempfile.tempdir
        tempfile.tempdir = tmp
        try:
            yield Path(tmp)
        finally:
            tempfile.tempdir = old


@contextlib.contextmanager
def writing(what: Path | str) -> Iterator[None]:
    """Turn an OSError raised while writing ``what`` (disk full, folder gone) into a one-line OutputError; the
    atomic writers have already removed their temporary files by then.

    Raises:
        OutputError: the write failed.
    """
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"could not write {what} ({reason}): free space or choose another output folder") from None
