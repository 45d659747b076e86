"""The seed's FCN: backbone features -> 1x1 score conv -> bilinear-initialised ConvTranspose2d upsampling.

``head="32s"`` is exactly the seed (one ConvTranspose2d(K, K, 64, stride 32, padding 16)); ``"16s"`` and ``"8s"``
are the FCN paper's skip variants that fuse stride-16 / stride-8 features before the final upsampling; ``"4s"`` adds
one more skip from the stride-4 features and ``"2s"`` another from the stride-2 ones (thin structures: poles and
sign posts are 1-3 pixels wide); ``"2s-k3"`` is the 2s head with 3x3 score convs at strides 4 and 2 (a thin line
is a pattern in a neighbourhood, not in one pixel's features). The heads and initialisations the seed's questions
tried and the project did not keep (a 128-channel score, five x2 upsamplings, bicubic, random initialisation) are
in docs/seed-qa.md and git history (0.2.0), not here.
"""

from __future__ import annotations

import torch
from torch import nn

from fcnedge.errors import ConfigError

HEADS = ("32s", "16s", "8s", "4s", "2s", "2s-k3")
SKIP_STRIDES = {"16s": 16, "8s": 8, "4s": 4, "2s": 2, "2s-k3": 2}  # the finest skip of each skip head
WIDE_SKIPS = {"2s-k3": (4, 2)}  # heads whose skip scores at these strides are 3x3 convs (padding 1), not 1x1
SKIP_CHAIN = (16, 8, 4, 2)  # skips are fused coarse to fine: x2 of the running score + the stride's score conv


def skip_strides(head: str) -> tuple[int, ...]:
    """The strides a head fuses, coarse to fine (``()`` for the 32s heads)."""
    finest = SKIP_STRIDES.get(head)
    return () if finest is None else SKIP_CHAIN[: SKIP_CHAIN.index(finest) + 1]


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """The (C, C, k, k) transposed-conv weight that upsamples each channel bilinearly by ``k // 2``.

    Channel ``c`` feeds only output channel ``c``; off-diagonal filters are zero.
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    filt1d = 1 - torch.abs(og - center) / factor
    filt = (filt1d[:, None] * filt1d[None, :]).to(torch.float32)
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    idx = torch.arange(channels)
    weight[idx, idx] = filt
    return weight


def bilinear_upsampler(channels: int, factor: int, *, frozen: bool) -> nn.ConvTranspose2d:
    """ConvTranspose2d(kernel 2f, stride f, padding f/2) initialised as bilinear x``factor`` upsampling."""
    up = nn.ConvTranspose2d(channels, channels, kernel_size=2 * factor, stride=factor, padding=factor // 2)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, 2 * factor))
        assert up.bias is not None
        up.bias.zero_()
    up.requires_grad_(not frozen)
    return up


def _zero(conv: nn.Conv2d) -> None:
    """Skip scores start at zero, so an untrained 16s/8s head equals the 32s one (FCN paper); 4s likewise."""
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class FCN(nn.Module):
    """Fully convolutional network for semantic segmentation.

    Args:
        backbone: module mapping (N, 3, H, W) to a dict {stride: features} with strides 2, 4, 8, 16 and 32 (a
            head reads the strides down to its finest skip).
        channels: feature channels at those strides.
        num_classes: K.
        head: ``"32s"`` (the seed), ``"16s"``, ``"8s"``, ``"4s"`` or ``"2s"`` (skips down to stride 4 or 2: for
            thin structures), or ``"2s-k3"`` (:data:`HEADS`).
        freeze_upsampling: keep the transposed convs fixed at bilinear (FCN paper) instead of training them.

    Raises:
        ConfigError: unknown head, or num_classes < 2.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        channels: dict[int, int],
        num_classes: int,
        head: str = "32s",
        freeze_upsampling: bool = False,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ConfigError(f"head {head!r} is unknown: choose one of {', '.join(HEADS)}")
        if num_classes < 2:
            raise ConfigError(f"num_classes {num_classes} is invalid: use 2 or more")
        self.backbone = backbone
        self.head = head
        k, frozen = num_classes, freeze_upsampling
        self.score32 = nn.Conv2d(channels[32], k, kernel_size=1)
        self.upsample: nn.Module
        if head == "32s":
            self.upsample = bilinear_upsampler(k, 32, frozen=frozen)
            return
        for stride in skip_strides(head):  # score16, up32to16, score8, up16to8, ... (the checkpoints' names)
            size = 3 if stride in WIDE_SKIPS.get(head, ()) else 1
            conv = nn.Conv2d(channels[stride], k, kernel_size=size, padding=size // 2)
            _zero(conv)
            setattr(self, f"score{stride}", conv)
            setattr(self, f"up{2 * stride}to{stride}", bilinear_upsampler(k, 2, frozen=frozen))
        self.upsample = bilinear_upsampler(k, SKIP_STRIDES[head], frozen=frozen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised RGB -> (N, K, H, W) logits (H, W multiples of 32)."""
        feats = self.backbone(x)
        score = self.score32(feats[32])
        for stride in skip_strides(self.head):
            up, skip = getattr(self, f"up{2 * stride}to{stride}"), getattr(self, f"score{stride}")
            score = up(score) + skip(feats[stride])
        out: torch.Tensor = self.upsample(score)
        return out
