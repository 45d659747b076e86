"""Checkpoint I/O: one file holding the state_dict and the ModelMeta, written atomically."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fcnedge.errors import CheckpointError, ModelMetaError
from fcnedge.fsutil import atomic_write, check_output, writing
from fcnedge.meta import ModelMeta
from fcnedge.models.registry import build_from_meta

log = logging.getLogger(__name__)

FORMAT = "fcnedge-checkpoint"
FORMAT_VERSION = 1


def unused_prefixes(model: nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of parameters the FCN never uses (a backbone's ImageNet classifier, named by its
    ``UNUSED_IN_FCN``): checkpoints leave them out and loading does not miss them."""
    return tuple(
        f"{name}.{p}" if name else p
        for name, module in model.named_modules()
        for p in getattr(type(module), "UNUSED_IN_FCN", ())
    )


def save_checkpoint(
    path: Path,
    model: nn.Module,
    meta: ModelMeta,
    *,
    force: bool = False,
    half: bool = False,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model``'s weights and ``meta`` to ``path`` atomically.

    Args:
        path: destination file (``.pt``).
        model: the module whose ``state_dict`` is saved.
        meta: its description.
        force: replace an existing file.
        half: store floating-point tensors as float16 (halves the size; loading casts back to float32).
        extra: more JSON-like entries (optimizer state, epoch) kept beside the weights.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        ConfigError: the folder is missing or not writable.
        OutputError: the write failed (a full disk, say).
    """
    path = Path(path)
    check_output(path, force=force)
    unused = unused_prefixes(model)
    state = {  # contiguous: a channels_last model saves the same bytes as any other
        k: (v.half() if half and v.is_floating_point() else v).contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith(unused)
    }
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "meta": meta.to_dict(),
        "state_dict": state,
    }
    if extra:
        payload["extra"] = extra
    buf = io.BytesIO()  # torch's own file writer reports a full disk as a RuntimeError with no reason: write here
    torch.save(payload, buf)
    with writing(path):
        atomic_write(path, lambda tmp: _write_bytes(tmp, buf))
    log.info("saved checkpoint %s (%s)", path, meta.arch)


def check_finite(path: Path, state: dict[str, torch.Tensor]) -> None:
    """Raise unless every floating-point tensor is finite.

    Raises:
        CheckpointError: NaN or infinite weights (a corrupt file, or a diverged training run).
    """
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"checkpoint {path} holds NaN or infinite weights in {len(bad)} tensors (first: {bad[0]}): it is "
            "corrupt or from a diverged run; re-save or re-download it"
        )


def _check_zip(path: Path) -> None:
    """torch.save writes a zip with a CRC per member: a flipped byte fails here instead of loading garbage.

    Raises:
        CheckpointError: a member whose CRC does not match.
    """
    import zipfile

    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({exc}): re-save or re-download it") from None
    if bad is not None:
        raise CheckpointError(f"checkpoint {path} is corrupt (checksum mismatch in {bad}): re-save or re-download it")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read and check the raw payload of a checkpoint.

    Raises:
        CheckpointError: missing, truncated, corrupt, or not an fcnedge checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: check the path")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): re-save or re-download it")
    _check_zip(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files (zip, pickle, EOF, Runtime)
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}): re-save or re-download it"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an fcnedge checkpoint (no {FORMAT!r} header): save models with fcnedge train or "
            "fcnedge.models.save_checkpoint"
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format_version {payload.get('format_version')!r}; this fcnedge reads "
            f"{FORMAT_VERSION}: re-save it with this version"
        )
    return payload


def payload_meta(path: Path, payload: dict[str, Any]) -> ModelMeta:
    """The ModelMeta of a payload ``read_checkpoint`` returned; an invalid one is a CheckpointError naming the file."""
    try:
        return ModelMeta.from_dict(payload["meta"])
    except ModelMetaError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from None


def _float_state(path: Path, payload: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The payload's tensors as float32 (fp16-stored weights widened), checked finite."""
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    check_finite(path, state)
    return state


def load_checkpoint(path: Path, *, arch: str | None = None) -> tuple[nn.Module, ModelMeta]:
    """Rebuild the model saved at ``path`` (float32, eval mode).

    Args:
        path: a file written by :func:`save_checkpoint`.
        arch: if given, the architecture the checkpoint must have.

    Raises:
        CheckpointError: unreadable file, another architecture than ``arch``, or weights that do not fit.
        ModelMetaError: invalid embedded meta.
    """
    payload = read_checkpoint(path)
    meta = payload_meta(path, payload)
    if arch is not None and meta.arch != arch:
        raise CheckpointError(
            f"checkpoint {path} holds architecture {meta.arch!r}, not {arch!r}: pass --arch {meta.arch} "
            "or the right checkpoint"
        )
    model = build_from_meta(meta)
    state = _float_state(path, payload)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of another shape: another head size or backbone under this meta
        first = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), str(exc).splitlines()[0])
        raise CheckpointError(
            f"checkpoint {path} does not fit architecture {meta.arch!r} with {meta.num_classes} classes "
            f"({first[:160]}): it was saved from another model; re-save it"
        ) from None
    unused = unused_prefixes(model)
    missing = [k for k in result.missing_keys if not k.startswith(unused)]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {path} does not fit architecture {meta.arch!r} (missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}): it was saved from another model; re-save it"
        )
    model.eval()
    return model, meta


def read_meta(path: Path) -> ModelMeta:
    """The ModelMeta of a checkpoint without building the model.

    Raises:
        CheckpointError: unreadable file or invalid meta.
    """
    return payload_meta(path, read_checkpoint(path))


def describe(path: Path) -> tuple[ModelMeta, dict[str, Any]]:
    """The meta of a checkpoint and a few facts (parameters, size), without building the model.

    Raises:
        CheckpointError: unreadable file or invalid meta.
    """
    payload = read_checkpoint(path)
    meta = payload_meta(path, payload)
    n = sum(int(v.numel()) for v in payload["state_dict"].values())
    return meta, {"kind": "checkpoint", "parameters": n, "file_bytes": Path(path).stat().st_size}


def _widens(have: torch.Size, want: torch.Size) -> bool:
    """A 1x1 conv weight (O, I, 1, 1) where the model has an odd k x k one (O, I, k, k)."""
    return (
        len(have) == 4 == len(want)
        and have[:2] == want[:2]
        and tuple(have[2:]) == (1, 1)
        and want[2] == want[3] > 1
        and want[2] % 2 == 1
    )


def _widen(weight: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The k x k conv weight that computes what the 1x1 ``weight`` does (with padding k // 2): it in the centre
    tap, zeros around."""
    out = torch.zeros(shape, dtype=weight.dtype)
    c = shape[2] // 2
    out[:, :, c, c] = weight[:, :, 0, 0]
    return out


def warm_start(model: nn.Module, path: Path, *, arch: str, num_classes: int) -> dict[str, list[str]]:
    """Copy into ``model`` every tensor of the checkpoint at ``path`` whose name and shape match (a head change,
    e.g. 8s -> 4s, keeps the backbone and the shared score layers; new layers keep their initialisation). A 1x1 conv
    weight where the model has a 3x3 one (head 2s -> 2s-k3) goes into the centre tap, zeros around: the same
    function, so training starts where the checkpoint was.

    Returns:
        ``{"loaded": [...], "widened": [...], "new": [...], "skipped": [...]}``: copied names, those of them widened
        from 1x1, names only the model has, and names the checkpoint holds with another shape or that the model
        lacks.

    Raises:
        CheckpointError: unreadable file, another architecture or class count, or no backbone tensor fits.
    """
    payload = read_checkpoint(path)
    meta = payload_meta(path, payload)
    if meta.arch != arch or meta.num_classes != num_classes:
        raise CheckpointError(
            f"--init-from {path} holds {meta.arch!r} with {meta.num_classes} classes, not {arch!r} with "
            f"{num_classes}: pass a checkpoint of the same architecture and classes"
        )
    state = _float_state(Path(path), payload)
    own = model.state_dict()
    widened = {k: _widen(v, own[k].shape) for k, v in state.items() if k in own and _widens(v.shape, own[k].shape)}
    state.update(widened)
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not any(k.startswith("backbone.") for k in fits):
        raise CheckpointError(f"--init-from {path}: none of its backbone tensors fits this model: pass another one")
    model.load_state_dict(fits, strict=False)
    report = {
        "loaded": sorted(fits),
        "widened": sorted(widened),
        "new": sorted(k for k in own if k not in fits),
        "skipped": sorted(k for k in state if k not in fits),
    }
    log.info(
        "warm start from %s: %d tensors loaded, new %s, skipped %s",
        path,
        len(report["loaded"]),
        report["new"],
        report["skipped"],
    )
    return report


def _write_bytes(path: Path, buf: io.BytesIO) -> None:
    path.write_bytes(buf.getbuffer())
