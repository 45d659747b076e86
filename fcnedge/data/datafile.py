"""A dataset file: your own data described in YAML, with class names (and colours) that travel with the model.

```yaml
path: .                 # root; relative paths resolve against this file's own folder
train: train/images     # a folder of images; its masks: the sibling masks/ folder, same stem, .png
val: val/images         # optional: without it, a seeded 80/20 split of train (announced)
names: [sky, road, movers, other]     # or {0: sky, 1: road, ...}; K = len(names)
ignore_index: 255       # optional
palette: [[70,130,180], [128,64,128], [220,20,60], [128,128,128]]   # optional RGB per class
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fcnedge.errors import DatasetError

__all__ = ["DATAFILE_SUFFIXES", "DataFile", "masks_for", "read_datafile"]

DATAFILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class DataFile:
    """What a dataset file says, its paths resolved."""

    source: Path
    train: Path
    val: Path | None
    names: tuple[str, ...]
    ignore_index: int = 255
    palette: tuple[tuple[int, int, int], ...] = ()


def read_datafile(path: Path) -> DataFile:
    """Read and check a dataset file.

    Raises:
        DatasetError: unreadable YAML, a missing key, names that are not a list or a 0..K-1 mapping, a palette
            that does not give one RGB triple per class, or an image folder that does not exist.
    """
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0][:160]
        raise DatasetError(f"dataset file {path} cannot be read as YAML ({reason}): fix the file") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"dataset file {path} is not a mapping: write path:, train:, val: and names: keys")
    for key in ("train", "names"):
        if key not in doc:
            raise DatasetError(f"dataset file {path} has no {key}: key: add it (see the own-data guide)")
    root = path.parent / str(doc.get("path", "."))
    names = _names(doc["names"], path)
    train = _folder(root, doc["train"], "train", path)
    val = _folder(root, doc["val"], "val", path) if doc.get("val") else None
    ignore = doc.get("ignore_index", 255)
    if not isinstance(ignore, int) or not 0 <= ignore <= 255 or ignore < len(names):
        raise DatasetError(
            f"dataset file {path}: ignore_index {ignore!r} is invalid: give an id in {len(names)}..255 (not a class)"
        )
    return DataFile(path, train, val, names, ignore, _palette(doc.get("palette"), len(names), path))


def _names(value: Any, path: Path) -> tuple[str, ...]:
    if isinstance(value, dict):
        keys = sorted(value)
        if keys != list(range(len(keys))):
            raise DatasetError(f"dataset file {path}: names keys {keys} are not 0..{len(keys) - 1}: number them so")
        value = [value[k] for k in keys]
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, (str, int)) for v in value):
        raise DatasetError(f"dataset file {path}: names must list at least 2 class names, e.g. [sky, road]")
    names = tuple(str(v) for v in value)
    if len(set(names)) != len(names):
        raise DatasetError(f"dataset file {path}: names {list(names)} repeat a name: give each class its own")
    return names


def _palette(value: Any, k: int, path: Path) -> tuple[tuple[int, int, int], ...]:
    if value is None:
        return ()
    ok = isinstance(value, list) and len(value) == k
    ok = ok and all(isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
                    for c in value)  # fmt: skip
    if not ok:
        raise DatasetError(f"dataset file {path}: palette must give {k} RGB triples (0..255), one per class")
    return tuple((c[0], c[1], c[2]) for c in value)


def _folder(root: Path, value: Any, key: str, path: Path) -> Path:
    folder = root / str(value)
    if not folder.is_dir():
        raise DatasetError(f"dataset file {path}: {key}: {value} is not a folder ({folder}): check the path")
    return folder


def masks_for(images: Path) -> Path:
    """The mask folder of an image folder: its sibling ``masks/`` (``train/images`` -> ``train/masks``).

    Raises:
        DatasetError: there is none.
    """
    masks = images.parent / "masks"
    if not masks.is_dir():
        raise DatasetError(
            f"image folder {images} has no sibling masks/ folder ({masks}): put the class-id PNGs there, same stems"
        )
    return masks
