"""Training losses: cross-entropy (optionally class-weighted) plus, for thin classes, the Lovasz-softmax loss.

The Lovasz-softmax loss (Berman, Rannen Triki and Blaschko, CVPR 2018) is the convex (Lovasz) extension of the
per-class Jaccard loss 1 - IoU: on hard 0/1 predictions it equals the mean over present classes of 1 - IoU, the
figure mIoU averages. Cross-entropy counts pixels, so a class of a few thin pixels (Pole, SignSymbol) weighs little;
the Lovasz term weighs every present class's IoU alike.
"""

from __future__ import annotations

import torch
from torch import nn


def _lovasz_grad(fg_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss at errors sorted in decreasing order."""
    gts = fg_sorted.sum()
    intersection = gts - fg_sorted.cumsum(0)
    union = gts + (1.0 - fg_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if fg_sorted.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


def lovasz_softmax(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100, max_pixels: int | None = None
) -> torch.Tensor:
    """Mean over the classes present in ``labels`` of the Lovasz extension of 1 - IoU (the whole batch at once).

    Args:
        logits: (N, K, H, W).
        labels: (N, H, W) class ids; ``ignore_index`` pixels are left out.
        max_pixels: score a uniform random sample of this many labelled pixels (from torch's generator) instead
            of all: the K sorts of a full batch cost more than the network's step on a 2-core CPU.
    """
    k = logits.shape[1]
    flat = labels.reshape(-1)
    idx = (flat != ignore_index).nonzero().squeeze(1)
    if max_pixels is not None and idx.numel() > max_pixels:
        idx = idx[torch.randperm(idx.numel(), device=idx.device)[:max_pixels]]
    n, _, h, w = logits.shape
    pix = logits.permute(0, 2, 3, 1).reshape(n * h * w, k)[idx]
    probs, flat = pix.float().softmax(1), flat[idx]
    losses = []
    for c in range(k):
        fg = (flat == c).float()
        if not bool(fg.any()):
            continue
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[perm])))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


class SegLoss(nn.Module):
    """``ce`` x cross-entropy (with optional class weights) + ``lovasz`` x Lovasz-softmax (defaults: plain
    cross-entropy; ``ce=0`` with a Lovasz weight: the Lovasz-only fine-tuning of Berman et al.)."""

    def __init__(
        self,
        weight: torch.Tensor | None,
        ignore_index: int,
        lovasz: float = 0.0,
        max_pixels: int = 1 << 16,
        ce: float = 1.0,
    ) -> None:
        super().__init__()
        self.ce = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)
        self.ce_weight = ce
        self.ignore_index = ignore_index
        self.lovasz = lovasz
        self.max_pixels = max_pixels

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = self.ce_weight * self.ce(logits, labels) if self.ce_weight else logits.sum() * 0.0
        if self.lovasz:
            loss = loss + self.lovasz * lovasz_softmax(logits, labels, self.ignore_index, self.max_pixels)
        return loss
