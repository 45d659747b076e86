"""Training transforms on numpy arrays: scale jitter, rotation, random crop (padding with the ignore id), flip,
colour jitter, normalise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.normalize import Normalizer


def normalize(image: NDArray[np.uint8], mean: Sequence[float], std: Sequence[float]) -> NDArray[np.float32]:
    """HxWx3 uint8 RGB -> 3xHxW float32 ``(x / 255 - mean) / std``, exactly as the runtime normalises."""
    return Normalizer(mean, std)(image)


def pad_to(
    image: NDArray[np.uint8], mask: NDArray[np.uint8], h: int, w: int, *, ignore: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Pad bottom/right so the pair is at least h x w; the mask is padded with ``ignore``."""
    ph, pw = max(0, h - image.shape[0]), max(0, w - image.shape[1])
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
        mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=ignore)
    return image, mask


@dataclass(frozen=True)
class TrainAugment:
    """Scale jitter -> rotation -> random crop (padded with the ignore id when the image is smaller) -> horizontal
    flip -> colour jitter.

    Attributes:
        crop: (height, width) of the crop.
        scale: (min, max) scale factor.
        flip: random horizontal flip.
        ignore: mask id used for padding (and for the corners a rotation uncovers).
        rotate: maximum rotation in degrees (uniform in [-rotate, rotate]); 0 turns it off.
        jitter: colour jitter strength: brightness, contrast and saturation each scaled by a factor drawn from
            [1 - jitter, 1 + jitter], plus a hue shift of up to ``jitter * 18`` degrees; 0 turns it off.
    """

    crop: tuple[int, int] = (320, 480)
    scale: tuple[float, float] = (1.0, 1.0)
    flip: bool = True
    ignore: int = 255
    rotate: float = 0.0
    jitter: float = 0.0

    def __call__(
        self, image: NDArray[np.uint8], mask: NDArray[np.uint8], rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        lo, hi = self.scale
        if hi > lo or lo != 1.0:
            s = float(rng.uniform(lo, hi))
            h, w = max(1, round(image.shape[0] * s)), max(1, round(image.shape[1] * s))
            image = np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
            # INTER_NEAREST_EXACT: pixel centres as INTER_LINEAR places them; INTER_NEAREST (floor(dst / s)) put the
            # labels about a third of a pixel below and right of the image they describe
            mask = np.asarray(cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST_EXACT), dtype=np.uint8)
        if self.rotate > 0:
            image, mask = rotate_pair(image, mask, float(rng.uniform(-self.rotate, self.rotate)), ignore=self.ignore)
        ch, cw = self.crop
        image, mask = pad_to(image, mask, ch, cw, ignore=self.ignore)
        y = int(rng.integers(0, image.shape[0] - ch + 1))
        x = int(rng.integers(0, image.shape[1] - cw + 1))
        image, mask = image[y : y + ch, x : x + cw], mask[y : y + ch, x : x + cw]
        if self.flip and rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        image = np.ascontiguousarray(image)
        if self.jitter > 0:
            image = colour_jitter(image, self.jitter, rng)
        return image, np.ascontiguousarray(mask)


def rotate_pair(
    image: NDArray[np.uint8], mask: NDArray[np.uint8], degrees: float, *, ignore: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Rotate image (bilinear, black corners) and mask (nearest, ``ignore`` corners) about the centre."""
    h, w = mask.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    img = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    msk = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=ignore)
    return np.asarray(img, dtype=np.uint8), np.asarray(msk, dtype=np.uint8)


def colour_jitter(image: NDArray[np.uint8], strength: float, rng: np.random.Generator) -> NDArray[np.uint8]:
    """Random brightness, contrast, saturation (factors in [1 - s, 1 + s]) and hue shift (up to s * 18 degrees)."""
    b, c, sat = (float(rng.uniform(1 - strength, 1 + strength)) for _ in range(3))
    hue = float(rng.uniform(-strength, strength)) * 9.0  # OpenCV hue units are 2 degrees
    x = image.astype(np.float32) * b
    x = (x - x.mean()) * c + x.mean()
    hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + hue) % 180.0
    hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 255)
    return np.asarray(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB), dtype=np.uint8)


def center_crop(img: NDArray[np.uint8], h: int, w: int) -> NDArray[np.uint8]:
    """Crop (or zero-pad) to h x w around the centre."""
    ph, pw = max(0, h - img.shape[0]), max(0, w - img.shape[1])
    if ph or pw:
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)))
    y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[y : y + h, x : x + w]
