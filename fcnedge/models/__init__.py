"""Torch-side models: the seed's FCN, backbones, registry, checkpoints, the bundled default.

Importing this package imports nothing heavy (the shipped weight files live in ``fcnedge.models.weights`` and
the torch-free runtime finds them through ``importlib.resources``); the names below import torch on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_checkpoint": "fcnedge.models.checkpoint",
    "read_meta": "fcnedge.models.checkpoint",
    "save_checkpoint": "fcnedge.models.checkpoint",
    "load_default": "fcnedge.models.default",
    "FCN": "fcnedge.models.fcn",
    "bilinear_kernel": "fcnedge.models.fcn",
    "ARCHS": "fcnedge.models.registry",
    "build": "fcnedge.models.registry",
    "build_from_meta": "fcnedge.models.registry",
    "default_meta": "fcnedge.models.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fcnedge.models' has no attribute {name!r}")
