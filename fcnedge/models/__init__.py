"""Torch-side models: the seed's FCN, backbones, registry, checkpoints, the bundled default."""

from __future__ import annotations

from fcnedge.models.checkpoint import load_checkpoint, read_meta, save_checkpoint
from fcnedge.models.default import default_checkpoint_path, load_default
from fcnedge.models.fcn import FCN, bilinear_kernel
from fcnedge.models.registry import ARCHS, build, build_from_meta, default_meta

__all__ = [
    "ARCHS",
    "FCN",
    "bilinear_kernel",
    "build",
    "build_from_meta",
    "default_checkpoint_path",
    "default_meta",
    "load_checkpoint",
    "load_default",
    "read_meta",
    "save_checkpoint",
]
