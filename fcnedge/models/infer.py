"""Torch-side whole-image inference: pad to a multiple of the stride, run, crop the logits back."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from fcnedge.data.transforms import normalize
from fcnedge.meta import ModelMeta


@torch.no_grad()
def torch_logits(model: nn.Module, image: NDArray[np.uint8], meta: ModelMeta) -> NDArray[np.float32]:
    """HxWx3 uint8 RGB -> (K, H, W) float32 logits; the image is zero-padded (after normalisation) at the
    bottom/right to a multiple of ``meta.stride`` and the logits cropped back, never resized."""
    h, w = image.shape[:2]
    s = meta.stride
    ph, pw = (-h) % s, (-w) % s
    x = torch.from_numpy(normalize(image, meta.mean, meta.std))[None]
    if ph or pw:
        x = nn.functional.pad(x, (0, pw, 0, ph))
    out = model(x)[0, :, :h, :w]
    return np.ascontiguousarray(out.numpy())
