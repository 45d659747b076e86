"""Splitting a data set honestly: by sequence, never at random (neighbouring video frames are near-copies)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fcnedge.data.datasets import SegDataset
from fcnedge.errors import ConfigError


def sequence_of(path: Path) -> str:
    """A frame's sequence: its file name up to the first underscore (CamVid's ``0016E5_08100.png`` -> ``0016E5``)."""
    return Path(path).name.split("_", 1)[0]


def split_by_sequence(ds: SegDataset, held_out: tuple[str, ...]) -> tuple[SegDataset, SegDataset]:
    """(training frames, frames of the held-out sequences): whole sequences, never a random split, so the frames
    that choose the checkpoint are not near-copies of frames it trained on.

    Raises:
        ConfigError: an unknown sequence, or nothing left to train on.
    """
    have = sorted({sequence_of(img) for img, _ in ds.pairs})
    unknown = [s for s in held_out if s not in have]
    if unknown:
        raise ConfigError(f"--select-on {','.join(unknown)}: no such sequence in {ds.root}; have {', '.join(have)}")
    keep = tuple(p for p in ds.pairs if sequence_of(p[0]) not in held_out)
    out = tuple(p for p in ds.pairs if sequence_of(p[0]) in held_out)
    if not keep:
        raise ConfigError(f"--select-on {','.join(held_out)} holds out every training sequence: leave one to train on")
    return replace(ds, pairs=keep), replace(ds, pairs=out)
