"""``fcnedge data check``: what a dataset holds and what would break training, before training.

For each split: the pairs found, images without masks and masks without images (named), image sizes, the ids
found per class (pixel share and how many images hold it), the ignored share, and every problem that would stop
training (unreadable or colour masks, a size that differs from the image's, ids outside the classes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fcnedge.data.datasets import (
    DatasetInfo,
    SegDataset,
    _images_in,
    detect_format,
    open_dataset,
    read_mask_file,
)
from fcnedge.errors import DatasetError
from fcnedge.specs import DataFormat

__all__ = ["SplitReport", "check_dataset"]

RARE_SHARE = 0.005  # a class under this share of the labelled pixels is reported as rare


@dataclass
class SplitReport:
    """What one split holds."""

    split: str
    pairs: int = 0
    images_without_masks: list[str] = field(default_factory=list)
    masks_without_images: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    classes: list[dict[str, Any]] = field(default_factory=list)
    ignored_share: float = 0.0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_dataset(
    root: Path, fmt: DataFormat | str = DataFormat.AUTO, *, num_classes: int | None = None
) -> list[SplitReport]:
    """Survey the train and val splits of the dataset at ``root``.

    Raises:
        DatasetError: the path holds no dataset fcnedge recognises (nothing to survey).
    """
    reports: list[SplitReport] = []
    for split in ("train", "val"):
        report = SplitReport(split)
        _unpaired(Path(root), fmt, split, report)
        try:
            ds = open_dataset(root, fmt, split, num_classes=num_classes)
        except DatasetError as exc:
            if "does not exist" in str(exc) and split == "val" and reports and not report.problems:
                report.warnings.append(f"no val split ({exc})")
                reports.append(report)
                continue
            if not report.problems:
                report.problems.append(str(exc))
            reports.append(report)
            continue
        _survey(ds, report)
        reports.append(report)
    return reports


def _unpaired(root: Path, fmt: DataFormat | str, split: str, report: SplitReport) -> None:
    """Name the images without masks and the masks without images of a folder-like split (all of them, where the
    readers stop at the first)."""
    folders = _folders(root, fmt, split)
    if folders is None:
        return
    images, masks = (_images_in(f) if f.is_dir() else [] for f in folders)
    stems_i, stems_m = {p.stem for p in images}, {p.stem for p in masks}
    report.images_without_masks = sorted(str(p) for p in images if p.stem not in stems_m)
    report.masks_without_images = sorted(str(p) for p in masks if p.stem not in stems_i)
    for what, names in (("image(s) without a mask", report.images_without_masks),
                        ("mask(s) without an image", report.masks_without_images)):  # fmt: skip
        if names:
            report.problems.append(f"{len(names)} {what}, first {names[0]}")


def _folders(root: Path, fmt: DataFormat | str, split: str) -> tuple[Path, Path] | None:
    from fcnedge.data.datafile import DATAFILE_SUFFIXES, read_datafile

    if root.suffix.lower() in DATAFILE_SUFFIXES and root.is_file():
        df = read_datafile(root)
        images = df.val if split == "val" and df.val is not None else df.train
        return images, images.parent / "masks"
    kind = detect_format(root) if DataFormat(fmt) is DataFormat.AUTO else DataFormat(fmt)
    if kind is DataFormat.CAMVID:
        return root / split, root / f"{split}annot"
    if kind is DataFormat.FOLDER:
        base = root / split if (root / split / "images").is_dir() else root
        return base / "images", base / "masks"
    return None  # VOC: its split file names the pairs


def _survey(ds: SegDataset, report: SplitReport) -> None:
    from fcnedge.imagesize import header_size

    info: DatasetInfo = ds.info
    k = len(info.class_names)
    pixels = np.zeros(256, dtype=np.int64)
    images_with = np.zeros(256, dtype=np.int64)
    sizes: Counter[str] = Counter()
    report.pairs = len(ds.pairs)
    for img_path, mask_path in ds.pairs:
        try:
            mask = read_mask_file(mask_path, info, voc=info.class_names == _voc_names())
        except DatasetError as exc:
            report.problems.append(str(exc))
            continue
        hw = header_size(img_path)
        if hw is not None and tuple(hw) != mask.shape:
            report.problems.append(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image is {hw[1]}x{hw[0]}"
            )
        sizes[f"{mask.shape[0]}x{mask.shape[1]}"] += 1
        counts = np.bincount(mask.ravel(), minlength=256)
        pixels += counts
        images_with += counts > 0
        bad = [int(i) for i in np.flatnonzero(counts) if i >= k and i != info.ignore_index]
        if bad:
            report.problems.append(
                f"mask {mask_path} holds id(s) {bad[:5]} outside the {k} classes (ignore id {info.ignore_index})"
            )
    total = int(pixels.sum())
    labelled = total - int(pixels[info.ignore_index]) if total else 0
    report.sizes = dict(sizes.most_common(5))
    report.ignored_share = float(pixels[info.ignore_index]) / total if total else 0.0
    for c, name in enumerate(info.class_names):
        share = float(pixels[c]) / labelled if labelled else 0.0
        report.classes.append({"id": c, "name": name, "pixel_share": round(share, 5), "images": int(images_with[c])})
        if pixels[c] == 0:
            report.warnings.append(f"class {c} ({name}) is absent from {report.split}")
        elif share < RARE_SHARE:
            report.warnings.append(
                f"class {c} ({name}) is rare in {report.split}: {100 * share:.2f} % of labelled pixels"
            )


def _voc_names() -> tuple[str, ...]:
    from fcnedge.data.datasets import VOC_CLASSES

    return VOC_CLASSES
