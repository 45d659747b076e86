"""An image file's size from its header, without decoding it: so an image too large to decode or allocate is
refused in one line before any memory is spent on it (a 2.4 MB PNG can declare 50000 x 50000 pixels)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

# 2**28 pixels (16384 x 16384): decoding one costs 768 MiB as RGB; OpenCV's own ceiling is 2**30.
DEFAULT_MAX_PIXELS = 1 << 28

__all__ = ["DEFAULT_MAX_PIXELS", "header_size"]


def header_size(path: Path) -> tuple[int, int] | None:
    """(height, width) that the file's header declares, or None when the format is not one read here or the
    header is cut short (the decoder then has the last word)."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return h, w
            if head.startswith(b"\xff\xd8"):
                return _jpeg(fh)
            if head.startswith(b"BM") and len(head) >= 26:
                w, h = struct.unpack("<ii", head[18:26])
                return abs(h), abs(w)
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                return _tiff(fh, "<" if head[:2] == b"II" else ">")
            if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
                return _webp(head)
    except (OSError, struct.error):
        return None
    return None


def _jpeg(fh: BinaryIO) -> tuple[int, int] | None:
    """The first SOFn marker's size (SOF0-SOF15 except DHT, JPG and DAC)."""
    fh.seek(2)
    while True:
        byte = fh.read(1)
        while byte and byte != b"\xff":
            byte = fh.read(1)
        while byte == b"\xff":
            byte = fh.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        size = fh.read(2)
        if len(size) < 2:
            return None
        length = struct.unpack(">H", size)[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data = fh.read(5)
            if len(data) < 5:
                return None
            h, w = struct.unpack(">HH", data[1:5])
            return h, w
        fh.seek(length - 2, 1)


def _tiff(fh: BinaryIO, order: str) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first image file directory."""
    fh.seek(4)
    (offset,) = struct.unpack(order + "I", fh.read(4))
    fh.seek(offset)
    (count,) = struct.unpack(order + "H", fh.read(2))
    found: dict[int, int] = {}
    for _ in range(min(count, 4096)):
        entry = fh.read(12)
        if len(entry) < 12:
            break
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            fmt = {3: "H", 4: "I"}.get(kind)
            if fmt is None:
                return None
            found[tag] = struct.unpack(order + fmt, entry[8 : 8 + struct.calcsize(fmt)])[0]
    if 256 in found and 257 in found:
        return found[257], found[256]
    return None


def _webp(head: bytes) -> tuple[int, int] | None:
    """VP8 (lossy), VP8L (lossless) and VP8X (extended) headers."""
    chunk = head[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return h, w
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", head[26:30])
        return h & 0x3FFF, w & 0x3FFF
    return None
