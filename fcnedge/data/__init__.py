"""Dataset readers and transforms."""

from __future__ import annotations

from fcnedge.data.datasets import (
    CAMVID_CLASSES,
    CAMVID_IGNORE,
    CAMVID_PALETTE,
    DatasetInfo,
    SegDataset,
    open_dataset,
    read_image_file,
    read_sample,
)

__all__ = [
    "CAMVID_CLASSES",
    "CAMVID_IGNORE",
    "CAMVID_PALETTE",
    "DatasetInfo",
    "SegDataset",
    "open_dataset",
    "read_image_file",
    "read_sample",
]
