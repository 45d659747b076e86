"""`fcnedge data check`: pairs, unpaired files named, ids per class, and a one-line exit 2 on anything that would
break training (missing pairs, colour masks, ids outside the classes)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from fcnedge.cli import app

runner = CliRunner()


def _dataset(root: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cv2.imwrite(str(root / split / "images" / f"f{i}.jpg"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
            mask = np.zeros((48, 64), np.uint8)
            mask[:, 32:] = 1
            mask[:2] = 255
            cv2.imwrite(str(root / split / "masks" / f"f{i}.png"), mask)
    f = root / "d.yaml"
    f.write_text("path: .\ntrain: train/images\nval: val/images\nnames: [left, right, never]\n")
    return f


def test_a_clean_dataset_is_surveyed(tmp_path: Path) -> None:
    f = _dataset(tmp_path)
    res = runner.invoke(app, ["data", "check", str(f), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    train = doc["splits"][0]
    assert train["pairs"] == 4 and train["sizes"] == {"48x64": 4} and train["problems"] == []
    assert [c["images"] for c in train["classes"]] == [4, 4, 0]
    assert abs(train["classes"][0]["pixel_share"] - 0.5) < 1e-6 and 0.04 < train["ignored_share"] < 0.05
    assert "class 2 (never) is absent from train" in train["warnings"]
    text = runner.invoke(app, ["data", "check", str(f)])
    assert text.exit_code == 0 and "left" in text.stdout and "% of labelled pixels" in text.stdout


def test_what_would_break_training_is_named_and_exit_2(tmp_path: Path) -> None:
    f = _dataset(tmp_path)
    (tmp_path / "train" / "images" / "f0.jpg").unlink()  # a mask without its image
    cv2.imwrite(str(tmp_path / "train" / "images" / "lonely.jpg"), np.zeros((48, 64, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "val" / "masks" / "f1.png"), np.full((48, 64), 7, np.uint8))  # id 7 of 3 classes
    colour = np.zeros((48, 64, 3), np.uint8)
    colour[:, :, 2] = 128  # a colour mask: channels differ
    cv2.imwrite(str(tmp_path / "val" / "masks" / "f2.png"), colour)
    res = runner.invoke(app, ["data", "check", str(f)])
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "problem(s) would break training" in res.stderr
    assert "lonely.jpg" in res.stdout and "masks/f0.png" in res.stdout  # every unpaired file class, named
    assert "holds id(s) [7]" in res.stdout and "is a colour image" in res.stdout


def test_a_path_that_is_no_dataset_is_one_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["data", "check", str(tmp_path)])
    assert res.exit_code == 2 and "not a dataset fcnedge recognises" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
