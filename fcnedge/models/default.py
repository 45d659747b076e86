"""The bundled default model in PyTorch (its files and their hashes are records in :mod:`fcnedge.catalog`)."""

from __future__ import annotations

from torch import nn

from fcnedge.catalog import get_weights
from fcnedge.meta import ModelMeta
from fcnedge.models.checkpoint import load_checkpoint


def load_default(name: str | None = None) -> tuple[nn.Module, ModelMeta]:
    """A bundled model (the default: EfficientNet-Lite0 FCN-2s trained on CamVid) as float32 torch, eval mode.

    Raises:
        ConfigError: an unknown name.
        ModelMetaError: the shipped file is missing or fails its sha256 check.
    """
    return load_checkpoint(get_weights(name).path("checkpoint"))
