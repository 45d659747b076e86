"""The bundled default model: EfficientNet-Lite0 FCN trained on CamVid, shipped inside the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from torch import nn

from fcnedge.errors import CheckpointError
from fcnedge.meta import ModelMeta
from fcnedge.models.checkpoint import load_checkpoint

DEFAULT_NAME = "fcn_lite0_camvid.pt"
INT8_NAME = "fcn_lite0_camvid.int8.onnx"


def default_checkpoint_path() -> Path:
    """Path of the bundled checkpoint inside the installed package.

    Raises:
        CheckpointError: the package was installed without its weights.
    """
    path = Path(str(resources.files("fcnedge.models") / "weights" / DEFAULT_NAME))
    if not path.is_file():
        raise CheckpointError(
            f"the bundled default model {path} is missing: reinstall fcnedge (pip install --force-reinstall "
            "fcnedge) or pass a model path"
        )
    return path


def shipped_int8_path() -> Path | None:
    """The int8 ONNX of the default model shipped in the package (calibrated on CamVid train), if present."""
    path = Path(str(resources.files("fcnedge.models") / "weights" / INT8_NAME))
    return path if path.is_file() else None


def load_default() -> tuple[nn.Module, ModelMeta]:
    """The bundled EfficientNet-Lite0 FCN trained on CamVid (float32, eval mode), and its meta."""
    return load_checkpoint(default_checkpoint_path())
