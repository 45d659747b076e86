"""Make a small dataset of your own kind, for the "Train on your own data" guide: 4 classes (sky, road, movers,
other) with JPEG images, PNG id masks and a dataset file, from CamVid's val frames when CamVid is beside the
repository (or at $CAMVID), else from synthetic street-like frames.

Usage: .venv/bin/python scripts/make_streets.py OUT [--frames 40]
Writes OUT/{train,val}/{images,masks} and OUT/streets.yaml.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

# CamVid ids -> the 4 classes: Sky -> sky, Road + Pavement -> road, Car + Pedestrian + Bicyclist -> movers, the rest
# -> other; CamVid's void (11) stays ignored (255)
CAMVID_TO_4 = {0: 0, 3: 1, 4: 1, 8: 2, 9: 2, 10: 2, 1: 3, 2: 3, 5: 3, 6: 3, 7: 3}
NAMES = ["sky", "road", "movers", "other"]
PALETTE = [[70, 130, 180], [128, 64, 128], [220, 20, 60], [128, 128, 128]]


def from_camvid(root: Path, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``n`` val frames (BGR) with their masks mapped to the 4 classes."""
    lut = np.full(256, 255, dtype=np.uint8)
    for src, dst in CAMVID_TO_4.items():
        lut[src] = dst
    frames = sorted((root / "val").glob("*.png"))[:n]
    return [
        (cv2.imread(str(f)), lut[cv2.imread(str(root / "valannot" / f.name), cv2.IMREAD_UNCHANGED)]) for f in frames
    ]


def synthetic(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Street-like frames: sky above a horizon, a road below, blocks of 'movers' on it, the rest 'other'."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        h, w = 240, 320
        mask = np.full((h, w), 3, np.uint8)
        horizon = int(rng.integers(70, 110))
        mask[:horizon] = 0
        mask[int(h * 0.6) :, int(w * 0.2) : int(w * 0.8)] = 1
        for _ in range(int(rng.integers(1, 4))):
            x, y = int(rng.integers(40, w - 80)), int(rng.integers(int(h * 0.55), h - 40))
            mask[y : y + 30, x : x + 50] = 2
        colours = np.array(PALETTE, np.uint8)[mask]
        noise = rng.normal(0, 12, colours.shape)
        out.append((np.clip(colours + noise, 0, 255).astype(np.uint8)[:, :, ::-1], mask))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--frames", type=int, default=40)
    a = ap.parse_args()
    camvid = Path(os.environ.get("CAMVID", Path(__file__).resolve().parents[1].parent / "shared/datasets/camvid"))
    pairs = from_camvid(camvid, a.frames) if (camvid / "valannot").is_dir() else synthetic(a.frames)
    n_val = max(1, len(pairs) // 5)
    for i, (img, mask) in enumerate(pairs):
        split = "val" if i >= len(pairs) - n_val else "train"
        for sub in ("images", "masks"):
            (a.out / split / sub).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(a.out / split / "images" / f"street{i:03d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(str(a.out / split / "masks" / f"street{i:03d}.png"), mask)
    (a.out / "streets.yaml").write_text(
        "path: .\ntrain: train/images\nval: val/images\n"
        f"names: [{', '.join(NAMES)}]\nignore_index: 255\n"
        f"palette: [{', '.join(str(c) for c in PALETTE)}]\n"
    )
    source = "CamVid val" if (camvid / "valannot").is_dir() else "synthetic frames"
    print(f"wrote {len(pairs) - n_val} train and {n_val} val pairs from {source}, and {a.out / 'streets.yaml'}")


if __name__ == "__main__":
    main()
