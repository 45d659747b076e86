"""Reading images and turning them into model input (RGB at every boundary unless a name says BGR)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import InputImageError
from fcnedge.imagesize import DEFAULT_MAX_PIXELS, header_size
from fcnedge.normalize import Normalizer

log = logging.getLogger(__name__)

__all__ = ["Normalizer", "as_rgb_uint8", "read_image", "to_rgb_from_bgr_any"]

JPEG_LIKE = (".jpg", ".jpeg", ".jpe", ".webp")


def read_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> NDArray[np.uint8]:
    """Read an image file as HxWx3 uint8 RGB, respecting EXIF orientation.

    Grayscale becomes 3 channels, alpha is dropped, 16-bit is scaled to 8-bit, float in [0, 1] by x255 (each
    logged). The size its header declares is checked against ``max_pixels`` before anything is decoded.

    Raises:
        InputImageError: missing, empty, unreadable, larger than ``max_pixels``, smaller than 2x2, or with
            pixel values that have no 8-bit meaning (NaN, Inf, float outside [0, 1]).
    """
    path = Path(path)
    if path.is_dir():
        raise InputImageError(f"image {path} is a folder: pass image files (or the folder as an input to predict)")
    if not path.is_file():
        raise InputImageError(f"image {path} does not exist: check the path")
    declared = header_size(path)
    if declared is not None:
        check_pixels(declared, max_pixels=max_pixels, name=str(path))
    try:
        raw = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputImageError(f"image {path} cannot be read ({exc.strerror}): check its permissions") from None
    if raw.size == 0:
        raise InputImageError(f"image {path} is empty (0 bytes): replace the file")
    if path.suffix.lower() in JPEG_LIKE:
        img = cv2.imdecode(raw, cv2.IMREAD_COLOR)  # IMREAD_COLOR applies EXIF orientation
    else:
        img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    del raw
    if img is None:
        raise InputImageError(f"image {path} cannot be decoded: it is corrupt or not an image")
    check_pixels(img.shape[:2], max_pixels=max_pixels, name=str(path))  # formats whose header is not read here
    rgb = to_rgb_from_bgr_any(img, name=str(path), inplace=True)
    check_size(rgb, name=str(path))
    return rgb


def check_pixels(size: tuple[int, int], *, max_pixels: int, name: str) -> None:
    """Refuse an image of more than ``max_pixels`` pixels.

    Raises:
        InputImageError: the size, the limit and the option that raises it.
    """
    h, w = int(size[0]), int(size[1])
    if h * w > max_pixels:
        raise InputImageError(
            f"image {name} is {h}x{w} (HxW, {h * w / 1e6:.0f} megapixels), over the limit of {max_pixels} pixels: "
            "pass --max-pixels N to allow it (it needs about 4 bytes a pixel), or downscale it"
        )


def check_size(img: NDArray[np.generic], *, name: str) -> None:
    """Raise InputImageError for images with a side under 2 pixels.

    Raises:
        InputImageError: a side is under 2 pixels.
    """
    if img.shape[0] < 2 or img.shape[1] < 2:
        label = name if name.startswith("image") else f"image {name}"  # as_rgb_uint8's default name is "image"
        raise InputImageError(
            f"{label} is {img.shape[0]}x{img.shape[1]} (HxW): too small to segment (need at least 2x2 pixels)"
        )


def to_rgb_from_bgr_any(img: NDArray[np.generic], *, name: str = "image", inplace: bool = False) -> NDArray[np.uint8]:
    """Any decoded OpenCV image (BGR/BGRA/gray, 8 or 16 bit, float in [0, 1]) -> HxWx3 uint8 RGB.

    Args:
        inplace: an 8-bit BGR ``img`` may be turned into RGB in its own memory (a decoder's fresh array: a
            12000 x 12000 photo is not copied once more).

    Raises:
        InputImageError: pixel values without an 8-bit meaning (see :func:`float_to_uint8`).
    """
    if img.dtype == np.uint16:
        log.warning("%s is 16-bit: scaled to 8-bit", name)
        img = (img.astype(np.uint16) >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = float_to_uint8(img, name=name)
    bgr: NDArray[np.uint8] = np.asarray(img, dtype=np.uint8)  # no copy: uint8 by now
    if bgr.ndim == 2 or bgr.shape[2] == 1:
        log.warning("%s is grayscale: replicated to 3 channels", name)
        gray = bgr.reshape(bgr.shape[0], bgr.shape[1])
        return np.repeat(gray[:, :, None], 3, axis=2)
    if bgr.shape[2] == 4:
        log.warning("%s has an alpha channel: dropped", name)
        return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB), dtype=np.uint8)
    if inplace and bgr.flags.c_contiguous and bgr.flags.writeable:
        return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr), dtype=np.uint8)  # in place: no 2nd copy
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2RGB), dtype=np.uint8)


def float_to_uint8(img: NDArray[np.generic], *, name: str) -> NDArray[np.uint8]:
    """A float image (the convention: values in [0, 1]) as uint8, by x255 and rounding; logged.

    Raises:
        InputImageError: a non-finite value (NaN, Inf), a value outside [0, 1], or a pixel type that is neither
            8/16-bit unsigned nor float (signed or 32-bit integers have no agreed range).
    """
    if img.dtype.kind != "f":
        raise InputImageError(
            f"image {name} has {img.dtype} pixels: convert it to 8-bit (or 16-bit unsigned, or float in [0, 1])"
        )
    finite = np.isfinite(img)
    if not finite.all():
        bad = int(img.size - np.count_nonzero(finite))
        raise InputImageError(
            f"image {name} holds {bad} non-finite pixel value(s) (NaN or Inf): fix or mask them, then save it again"
        )
    lo, hi = float(img.min()), float(img.max())
    if lo < 0.0 or hi > 1.0:
        raise InputImageError(
            f"image {name} is {img.dtype} with values in [{lo:g}, {hi:g}]: float images must hold values in "
            "[0, 1]; scale it to [0, 1] or convert it to 8-bit"
        )
    log.warning("%s is %s in [0, 1]: scaled to 8-bit (x255)", name, img.dtype)
    out: NDArray[np.uint8] = np.rint(img.astype(np.float64) * 255.0).astype(np.uint8)
    return out


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
