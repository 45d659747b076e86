"""Reading images and turning them into model input (RGB at every boundary unless a name says BGR)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import InputImageError
from fcnedge.normalize import Normalizer

log = logging.getLogger(__name__)

__all__ = ["Normalizer", "as_rgb_uint8", "read_image", "to_rgb_from_bgr_any"]

JPEG_LIKE = (".jpg", ".jpeg", ".jpe", ".webp")


def read_image(path: Path) -> NDArray[np.uint8]:
    """Read an image file as HxWx3 uint8 RGB, respecting EXIF orientation.

    Grayscale becomes 3 channels, alpha is dropped, 16-bit is scaled to 8-bit (each logged).

    Raises:
        InputImageError: missing, empty, unreadable, or smaller than 2x2.
    """
    path = Path(path)
    if path.is_dir():
        raise InputImageError(f"image {path} is a folder: pass image files (or the folder as an input to predict)")
    if not path.is_file():
        raise InputImageError(f"image {path} does not exist: check the path")
    try:
        raw = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputImageError(f"image {path} cannot be read ({exc.strerror}): check its permissions") from None
    if raw.size == 0:
        raise InputImageError(f"image {path} is empty (0 bytes): replace the file")
    if path.suffix.lower() in JPEG_LIKE:
        img = cv2.imdecode(raw, cv2.IMREAD_COLOR)  # IMREAD_COLOR applies EXIF orientation
        if img is not None:
            img = img[:, :, ::-1]
    else:
        img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
        if img is not None:
            img = to_rgb_from_bgr_any(img, name=str(path))
    if img is None:
        raise InputImageError(f"image {path} cannot be decoded: it is corrupt or not an image")
    rgb = np.ascontiguousarray(img, dtype=np.uint8)
    check_size(rgb, name=str(path))
    return rgb


def check_size(img: NDArray[np.generic], *, name: str) -> None:
    """Raise InputImageError for images with a side under 2 pixels.

    Raises:
        InputImageError: a side is under 2 pixels.
    """
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise InputImageError(
            f"image {name} is {img.shape[0]}x{img.shape[1]} (HxW): too small to segment (need at least 2x2 pixels)"
        )


def to_rgb_from_bgr_any(img: NDArray[np.generic], *, name: str = "image") -> NDArray[np.uint8]:
    """Any decoded OpenCV image (BGR/BGRA/gray, 8 or 16 bit) -> HxWx3 uint8 RGB."""
    if img.dtype == np.uint16:
        log.warning("%s is 16-bit: scaled to 8-bit", name)
        img = (img.astype(np.uint16) >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        log.warning("%s is %s: scaled to 8-bit", name, img.dtype)
        f = img.astype(np.float32)
        img = np.clip(255 * (f - f.min()) / max(float(f.max() - f.min()), 1e-12), 0, 255).astype(np.uint8)
    if img.ndim == 2 or img.shape[2] == 1:
        log.warning("%s is grayscale: replicated to 3 channels", name)
        gray = img.reshape(img.shape[0], img.shape[1])
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.shape[2] == 4:
        log.warning("%s has an alpha channel: dropped", name)
        img = img[:, :, :3]
    return np.ascontiguousarray(img[:, :, ::-1]).astype(np.uint8, copy=False)


def as_rgb_uint8(image: NDArray[np.generic], *, name: str = "image") -> NDArray[np.uint8]:
    """Accept an in-memory RGB array (HxW gray, HxWx1, HxWx3 or HxWx4 RGBA; uint8 or uint16) as HxWx3 uint8.

    Raises:
        InputImageError: wrong rank or channel count, or too small.
    """
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputImageError(f"{name} has shape {image.shape}: pass HxW, HxWx1, HxWx3 (RGB) or HxWx4 (RGBA)")
    img = image
    if img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3:
        check_size(img, name=name)
        return img  # type: ignore[return-value]
    if img.ndim == 3 and img.shape[2] >= 3:
        img = img[:, :, [2, 1, 0] + ([3] if img.shape[2] == 4 else [])]  # to BGR(A) for the shared path
    out = to_rgb_from_bgr_any(img, name=name)
    check_size(out, name=name)
    return out
