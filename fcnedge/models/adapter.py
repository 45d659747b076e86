"""Wrap models that are not fcnedge FCNs (torchvision segmentation models, any nn.Module) so they export alike."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

TORCHVISION_SEGMENTATION = (
    "fcn_resnet50",
    "fcn_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
)


class LogitsAdapter(nn.Module):
    """Make any segmentation module return a plain (N, K, H, W) logits tensor.

    Accepts modules that return a tensor or a dict with an ``"out"`` entry (torchvision's segmentation models).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, dict):
            out = out["out"]
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"wrapped model returned {type(out).__name__}; expected a tensor or dict with 'out'")
        return out


def torchvision_segmentation(name: str) -> Callable[[int, bool], nn.Module]:
    """A factory ``(num_classes, pretrained_backbone) -> LogitsAdapter`` for a torchvision segmentation model."""

    def make(num_classes: int, pretrained_backbone: bool) -> nn.Module:
        import torchvision.models.segmentation as seg

        ctor = getattr(seg, name)
        kwargs: dict[str, object] = {"weights": None, "num_classes": num_classes}
        if not pretrained_backbone:
            kwargs["weights_backbone"] = None
        if name.startswith(("fcn_", "deeplabv3_resnet")):
            kwargs["aux_loss"] = False
        return LogitsAdapter(ctor(**kwargs))

    return make
