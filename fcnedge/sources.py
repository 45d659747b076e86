"""What a MODEL argument is: recognised by what it is, not by its file name.

``None``/``default``/``-`` or a catalog name -> a model shipped in the package; a folder -> an error; an existing
file -> a torch checkpoint when it is one (zip or pickle header), else an ONNX model; anything else -> an
architecture name (torch only). Torch-free at import: checkpoints and architecture names import torch on use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from fcnedge.catalog import Weights, find_weights
from fcnedge.errors import MissingDependencyError, ModelMetaError

log = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format
PICKLE_MAGIC = b"\x80"  # torch.save's legacy format: a pickle protocol opcode
ONNX_MAGIC = b"\x08"  # a serialised ModelProto starts with field 1 (ir_version), a varint
ORT_MAGIC = b"ORTM"  # an ORT-format model: a flatbuffer whose file identifier (bytes 4-8) is ORTM


class SourceKind(str, Enum):
    """The kinds of thing a MODEL argument can be."""

    BUNDLED = "bundled"
    ONNX = "onnx"
    OPENVINO_IR = "openvino-ir"  # model.xml (+ model.bin): runs on the OpenVINO engine only
    ORT_FORMAT = "ort-format"  # model.ort (ORT Mobile's format): runs on ONNX Runtime only
    CHECKPOINT = "checkpoint"
    ARCH = "architecture"


@dataclass(frozen=True)
class ModelSource:
    """A recognised MODEL argument."""

    kind: SourceKind
    text: str
    path: Path | None = None
    weights: Weights | None = None

    @property
    def label(self) -> str:
        """A short name for reports."""
        if self.weights is not None:
            return self.weights.name
        return self.path.stem if self.path is not None else self.text


def identify(source: str | Path | None) -> ModelSource:
    """Recognise a MODEL argument.

    Raises:
        ModelMetaError: a path that does not exist, is a folder, or is a pipe, device, socket or broken link.
    """
    text = "default" if source is None or str(source) == "" else str(source)
    weights = find_weights(text)
    if weights is not None:
        return ModelSource(SourceKind.BUNDLED, text, weights.path(), weights)
    path = Path(text)
    if path.is_dir():
        raise ModelMetaError(f"model {path} is a folder, not a model file: pass an .onnx model or a .pt checkpoint")
    if path.is_file():
        return ModelSource(_sniff(path), text, path)
    if path.exists() or path.is_symlink():
        raise ModelMetaError(
            f"model {path} is {_special_kind(path)}, not a model file: pass an .onnx model or a .pt checkpoint"
        )
    if path.suffix or os.sep in text or "/" in text:
        raise ModelMetaError(
            f"model {path} does not exist: check the path (or pass an architecture name; fcnedge models lists them)"
        )
    return ModelSource(SourceKind.ARCH, text)


def _special_kind(path: Path) -> str:
    """What a path that exists but is neither a file nor a folder is, in words."""
    import stat

    if not path.exists():
        return "a broken symbolic link"
    mode = path.stat().st_mode
    for test, words in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return words
    return "not a regular file"


def _sniff(path: Path) -> SourceKind:
    """A checkpoint (zip or pickle header) or an ONNX model (a protobuf starting with its ir_version field).

    Raises:
        ModelMetaError: an empty file, or one that is neither.
    """
    try:
        with path.open("rb") as fh:
            head8 = fh.read(8)
            head = head8[:4]
    except OSError as exc:
        raise ModelMetaError(f"model {path} cannot be read ({exc.strerror}): check its permissions") from None
    if not head:
        raise ModelMetaError(f"model {path} is empty (0 bytes): re-export or re-download it")
    if head == ZIP_MAGIC or head[:1] == PICKLE_MAGIC:
        return SourceKind.CHECKPOINT
    if head[:1] == ONNX_MAGIC:
        return SourceKind.ONNX
    if is_ort_format(path, head8):
        return SourceKind.ORT_FORMAT
    if head == b"<?xm" and path.suffix.lower() == ".xml":
        return SourceKind.OPENVINO_IR
    raise ModelMetaError(
        f"model {path} is neither an ONNX model nor a .pt checkpoint (corrupt or truncated, or another kind of "
        "file): re-export or re-download it"
    )


def is_ort_format(path: Path, head: bytes | None = None) -> bool:
    """Whether ``path`` (or its first bytes, ``head``) is a model in ONNX Runtime's own format (``.ort``). A file
    that cannot be read is not: the caller's own reading says what is wrong with it."""
    if head is None:
        try:
            with Path(path).open("rb") as fh:
                head = fh.read(8)
        except OSError:
            return False
    return head[4:8] == ORT_MAGIC


def require_onnx_format(path: Path, command: str) -> None:
    """Raise unless ``path`` is an ONNX protobuf: ONNX Runtime's own format (``.ort``, what ``--target ort-mobile``
    writes for phones) runs through the seam but cannot be read by the ONNX tools behind ``command``.

    Raises:
        ConfigError: ``path`` is an ORT-format model.
    """
    if is_ort_format(path):
        from fcnedge.errors import ConfigError

        raise ConfigError(
            f"{path} is in ONNX Runtime's own format (.ort), which {command} cannot read: pass the model.onnx "
            "beside it (predict, eval, bench and info run .ort files)"
        )


def cache_dir() -> Path:
    """Where fcnedge caches exported models (``$FCNEDGE_CACHE`` or ``~/.cache/fcnedge``)."""
    root = os.environ.get("FCNEDGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "fcnedge")
    return Path(root)


def torch_available() -> bool:
    """Whether torch can be imported (without importing it twice)."""
    import importlib.util
    import sys

    if "torch" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def require_torch(what: str) -> None:
    """Raise MissingDependencyError unless torch is importable.

    Raises:
        MissingDependencyError: torch is not installed.
    """
    require_module("torch", what, "PyTorch")


def require_module(module: str, what: str, label: str | None = None) -> None:
    """Raise MissingDependencyError unless ``module`` (part of the ``fcnedge[torch]`` extra) is importable.

    Raises:
        MissingDependencyError: it is not installed.
    """
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{what} needs {label or module}, which this install lacks: pip install 'fcnedge[torch]'"
        ) from None


def digest(src: ModelSource, *, num_classes: int | None = None, head: str | None = None) -> str:
    """A short content hash of the model a source stands for (file bytes, or the architecture's settings)."""
    if src.path is not None:
        h = hashlib.sha256(src.path.read_bytes())
    else:
        h = hashlib.sha256(json.dumps([src.text, num_classes, head, "seed0"]).encode())
    return h.hexdigest()[:16]


# The torch side's exporter of checkpoints and architecture names, registered by ``fcnedge.exporters`` when it is
# imported (the CLI does): core and runtime never import the exporters, which sit above them.
_TORCH_EXPORT: list[Callable[..., Path]] = []


def register_torch_export(export: Callable[..., Path]) -> None:
    """Install ``export(src, *, num_classes, head) -> Path``, the function that exports a checkpoint or an
    architecture name to ONNX for :func:`onnx_path`."""
    _TORCH_EXPORT[:] = [export]


def onnx_path(src: ModelSource, *, num_classes: int | None = None, head: str | None = None) -> Path:
    """An ONNX file for ``src``: the file itself, the bundled int8 model, or a checkpoint / architecture exported
    on first use into the cache (keyed by content hash and fcnedge version) by the registered exporter.

    Raises:
        MissingDependencyError: a checkpoint or architecture without torch installed, or without
            ``fcnedge.exporters`` imported (a library caller: ``import fcnedge.exporters`` first).
        ConfigError, CheckpointError, ExportError: see the exporter.
    """
    if src.kind in (SourceKind.ONNX, SourceKind.BUNDLED, SourceKind.OPENVINO_IR, SourceKind.ORT_FORMAT):
        assert src.path is not None
        return src.path
    require_torch(f"model {src.text!r} ({src.kind.value})")
    if not _TORCH_EXPORT:
        raise MissingDependencyError(
            f"model {src.text!r} ({src.kind.value}) is exported to ONNX by fcnedge.exporters, which is not loaded: "
            "import fcnedge.exporters first (the CLI does), or pass an .onnx model"
        )
    return _TORCH_EXPORT[0](src, num_classes=num_classes, head=head)
