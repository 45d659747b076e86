"""Your own data: a YAML dataset file with class names (list or mapping), relative paths, an ignore id and a
palette; names and colours travel into the checkpoint; a flat folder is split, seeded and announced; the layout
is recognised from what is at the path."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.data.datasets import detect_format, open_dataset
from fcnedge.errors import DatasetError
from fcnedge.specs import DataFormat

runner = CliRunner()
NAMES = ["sky", "road", "movers", "other"]


def _split(folder: Path, n: int, *, ids: int = 4, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / "images" / f"f{i}.jpg"), rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
        mask = rng.integers(0, ids, (64, 96), dtype=np.uint8)
        mask[:4] = 255  # some ignored pixels
        cv2.imwrite(str(folder / "masks" / f"f{i}.png"), mask)


@pytest.fixture()
def streets(tmp_path: Path) -> Path:
    """data/{train,val}/{images,masks} and a dataset file one folder above, pointing at it with path:."""
    _split(tmp_path / "data" / "train", 6)
    _split(tmp_path / "data" / "val", 2, seed=1)
    f = tmp_path / "streets.yaml"
    f.write_text(
        "path: data\ntrain: train/images\nval: val/images\nnames: [sky, road, movers, other]\nignore_index: 255\n"
        "palette: [[70,130,180], [128,64,128], [220,20,60], [128,128,128]]\n"
    )
    return f


def test_a_dataset_file_names_the_classes_and_their_colours(streets: Path) -> None:
    train = open_dataset(streets, DataFormat.AUTO, "train")
    val = open_dataset(streets, "camvid", "val")  # a dataset file is read as one, whatever the format says
    assert len(train) == 6 and len(val) == 2
    assert train.info.class_names == tuple(NAMES) and train.info.palette[0] == (70, 130, 180)
    img, mask = next(iter(train))
    assert img.shape == (64, 96, 3) and set(np.unique(mask)) <= {0, 1, 2, 3, 255}
    as_map = streets.with_name("map.yaml")
    as_map.write_text(
        "path: data\ntrain: train/images\nval: val/images\nnames: {0: sky, 1: road, 2: movers, 3: other}\n"
    )
    info = open_dataset(as_map, "auto", "train").info
    assert info.class_names == tuple(NAMES) and len(info.palette) == 4 and info.ignore_index == 255


def test_without_val_the_train_folder_is_split_seeded_and_announced(
    streets: Path, caplog: pytest.LogCaptureFixture
) -> None:
    solo = streets.with_name("solo.yaml")
    solo.write_text("path: data\ntrain: train/images\nnames: [sky, road, movers, other]\n")
    train, val = open_dataset(solo, "auto", "train"), open_dataset(solo, "auto", "val")
    assert len(train) + len(val) == 6 and len(val) == 1
    assert not {p for p, _ in train.pairs} & {p for p, _ in val.pairs}
    assert "no train/val split: split it 5/1 (seeded" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path: data\ntrain: train/images\n", "has no names: key"),
        ("path: data\ntrain: train/images\nnames: {1: a, 2: b}\n", "are not 0..1"),
        ("path: data\ntrain: train/images\nnames: [a]\n", "at least 2 class names"),
        ("path: data\ntrain: train/images\nnames: [a, a]\n", "repeat a name"),
        ("path: data\ntrain: nowhere\nnames: [a, b]\n", "train: nowhere is not a folder"),
        ("path: data\ntrain: train/images\nnames: [a, b]\npalette: [[1,2,3]]\n", "palette must give 2 RGB"),
        ("path: data\ntrain: train/images\nnames: [a, b]\nignore_index: 1\n", "ignore_index 1 is invalid"),
        ("names: [a\n", "cannot be read as YAML"),
    ],
)
def test_a_bad_dataset_file_says_what_is_wrong(streets: Path, text: str, message: str) -> None:
    bad = streets.with_name("bad.yaml")
    bad.write_text(text)
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("(", r"\(")):
        open_dataset(bad, "auto", "train")


def test_a_mask_id_outside_the_names_is_one_line_naming_the_file(streets: Path) -> None:
    pytest.importorskip("torch")
    few = streets.with_name("few.yaml")
    few.write_text("path: data\ntrain: train/images\nval: val/images\nnames: [sky, road]\n")
    res = runner.invoke(app, ["train", "--data", str(few), "--arch", "fcn_tiny", "--no-pretrained-backbone",
                              "--epochs", "1", "--crop", "64x96", "-o", str(streets.parent / "x.pt")])  # fmt: skip
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "/masks/f" in res.stderr and ">= num_classes 2" in res.stderr


def test_names_and_palette_travel_into_the_checkpoint(streets: Path) -> None:
    pytest.importorskip("torch")
    out = streets.parent / "m.pt"
    res = runner.invoke(app, ["train", "--data", str(streets), "--arch", "fcn_tiny", "--no-pretrained-backbone",
                              "--epochs", "1", "--crop", "64x96", "--batch-size", "2", "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    info = runner.invoke(app, ["info", str(out), "--json"])
    meta = json.loads(info.stdout)["meta"]
    assert meta["class_names"] == NAMES and meta["palette"][2] == [220, 20, 60] and meta["num_classes"] == 4
    onnx = streets.parent / "m.onnx"
    assert runner.invoke(app, ["export", str(out), "-o", str(onnx), "--shape", "64x96"]).exit_code == 0
    from fcnedge.runtime.session import read_onnx_meta

    assert read_onnx_meta(onnx)[0].class_names == tuple(NAMES)  # in the ONNX meta
    res = runner.invoke(app, ["eval", str(onnx), "--data", str(streets), "--json"])
    assert res.exit_code == 0, res.output
    assert list(json.loads(res.stdout)["per_class_iou"]) == NAMES  # eval JSON keyed by name


def test_the_layout_is_recognised_or_refused_with_the_list(tmp_path: Path, streets: Path) -> None:
    (tmp_path / "cv" / "trainannot").mkdir(parents=True)
    (tmp_path / "voc" / "JPEGImages").mkdir(parents=True)
    assert detect_format(tmp_path / "cv") is DataFormat.CAMVID
    assert detect_format(tmp_path / "voc") is DataFormat.VOC
    assert detect_format(tmp_path / "data") is DataFormat.FOLDER
    (tmp_path / "plain").mkdir()
    with pytest.raises(DatasetError, match="not a dataset fcnedge recognises: give a dataset file"):
        detect_format(tmp_path / "plain")
    with pytest.raises(DatasetError, match="does not exist"):
        detect_format(tmp_path / "nowhere")


def test_a_folder_without_names_takes_k_from_its_masks_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No silent K = 2: the largest id of all its masks (both splits, the ignore id aside) plus one, logged."""
    _split(tmp_path / "plain", 5, ids=4)
    train = open_dataset(tmp_path / "plain", "auto", "train")
    val = open_dataset(tmp_path / "plain", "auto", "val")
    assert len(train.info.class_names) == len(val.info.class_names) == 4
    assert "4 classes, from the largest id its masks hold" in caplog.text
    assert len(open_dataset(tmp_path / "plain", "folder", "train", num_classes=6).info.class_names) == 6


def test_the_held_out_share_is_an_option(tmp_path: Path) -> None:
    """--val-split sets the share held out where the data has no val split (seeded); out of (0, 1) is one line."""
    _split(tmp_path / "plain", 10, ids=3)
    assert len(open_dataset(tmp_path / "plain", "auto", "val", val_fraction=0.3)) == 3
    res = runner.invoke(app, ["train", "--data", str(tmp_path / "plain"), "--val-split", "0.4", "--print-config"])
    assert res.exit_code == 0 and "val_fraction: 0.4" in res.stdout
    pytest.importorskip("torch")
    res = runner.invoke(app, ["train", "--data", str(tmp_path / "plain"), "--val-split", "1.5", "-o",
                              str(tmp_path / "x.pt")])  # fmt: skip
    assert res.exit_code == 2 and "--val-split 1.5 is invalid" in res.stderr
