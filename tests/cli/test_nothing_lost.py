"""Nothing lost, ever (issue 24): an output never replaces an input, two writers never both "write" one mask,
non-finite pixels are refused, an image too large to decode is refused from its header, and a huge image at an
inference scale is made band by band with the same answer."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import make_identity_onnx
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.data.synthetic import synthetic_images
from fcnedge.errors import InputImageError, OutputExistsError
from fcnedge.fsutil import atomic_path
from fcnedge.imagesize import header_size
from fcnedge.runtime import open_predictor
from fcnedge.runtime.preprocess import read_image

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for i, img in enumerate(synthetic_images([(70, 90), (64, 96), (40, 50)], seed=5)):
        cv2.imwrite(str(d / f"p{i}.png"), img[:, :, ::-1])
    return d


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _one_line(res) -> str:  # type: ignore[no-untyped-def]
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.stderr
    return str(lines[0])


# -- 1. an output never replaces an input, --force or not -------------------------------------------------------
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_predict_into_the_input_folder_is_refused(photos: Path, identity_onnx: Path, force: list[str]) -> None:
    before = _bytes(photos)
    res = runner.invoke(app, ["predict", str(identity_onnx), str(photos), "-o", str(photos), *force])
    line = _one_line(res)
    assert "would replace the input" in line and "p0.png" in line and "choose another -o" in line
    assert _bytes(photos) == before  # every input as it was, nothing added


def test_an_output_that_links_to_an_input_is_refused(photos: Path, identity_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "p1.png").symlink_to(photos / "p1.png")  # a symlink named like the mask
    os.link(photos / "p2.png", out / "p2.png")  # a hard link: the same file under the mask's name
    before = _bytes(photos)
    for img in ("p1.png", "p2.png"):
        line = _one_line(runner.invoke(app, ["predict", str(identity_onnx), str(photos / img), "-o", str(out),
                                             "--force"]))  # fmt: skip
        assert "would replace the input" in line
    linked = tmp_path / "linked"
    linked.symlink_to(photos)  # the input folder under another name
    line = _one_line(runner.invoke(app, ["predict", str(identity_onnx), str(photos / "p0.png"), "-o", str(linked),
                                         "--force"]))  # fmt: skip
    assert "would replace the input" in line
    assert _bytes(photos) == before


def test_jpeg_inputs_may_share_their_folder_with_the_masks(tmp_path: Path, identity_onnx: Path) -> None:
    """Not every same-folder run is refused: a.jpg -> a.png replaces nothing."""
    cv2.imwrite(str(tmp_path / "a.jpg"), synthetic_images([(64, 96)], seed=1)[0])
    res = runner.invoke(app, ["predict", str(identity_onnx), str(tmp_path / "a.jpg"), "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED).shape == (64, 96)


# -- 4. outputs are claimed atomically ---------------------------------------------------------------------------
def test_exclusive_publish_keeps_the_first_writer(tmp_path: Path) -> None:
    target = tmp_path / "m.png"
    target.write_bytes(b"first")
    with pytest.raises(OutputExistsError, match="another process"), atomic_path(target, exclusive=True) as tmp:
        tmp.write_bytes(b"second")
    assert target.read_bytes() == b"first" and list(tmp_path.iterdir()) == [target]  # no temp file left


def test_of_many_racing_writers_exactly_one_wins(tmp_path: Path) -> None:
    target = tmp_path / "m.png"
    go = threading.Barrier(8)
    wins: list[int] = []
    lost: list[int] = []

    def write(i: int) -> None:
        go.wait()
        try:
            with atomic_path(target, exclusive=True) as tmp:
                tmp.write_bytes(str(i).encode())
            wins.append(i)
        except OutputExistsError:
            lost.append(i)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(lost) == 7
    assert target.read_bytes() == str(wins[0]).encode() and list(tmp_path.iterdir()) == [target]


def test_two_predict_processes_never_both_write_a_mask(tmp_path: Path, identity_onnx: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i, img in enumerate(synthetic_images([(200, 300)] * 30, seed=9)):
        cv2.imwrite(str(src / f"f{i:02d}.png"), img[:, :, ::-1])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "fcnedge", "predict", str(identity_onnx), str(src), "-o", str(tmp_path / "o"),
           "--threads", "1"]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    results = [p.communicate(timeout=300) for p in procs]
    wrote = []
    for (stdout, stderr), p in zip(results, procs, strict=True):
        line = next(ln for ln in stdout.splitlines() if ln.startswith("wrote "))
        n = int(line.split()[1])
        wrote.append(n)
        failed = [ln for ln in stderr.splitlines() if ln.startswith("failed: ")]
        assert p.returncode == (2 if failed else 0) and len(failed) == 30 - n  # each mask not written is said
        assert all("exists" in ln or "another process" in ln for ln in failed)
    assert sum(wrote) == 30  # every mask written by exactly one of them
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [f"f{i:02d}.png" for i in range(30)]


# -- 3. non-finite and out-of-range pixels ---------------------------------------------------------------------
def test_float_tiff_with_nan_or_inf_is_refused_in_one_line(tmp_path: Path, identity_onnx: Path) -> None:
    clean = np.random.default_rng(0).random((64, 96, 3)).astype(np.float32)
    cases = {"nan.tiff": np.nan, "inf.tiff": np.inf, "big.tiff": 7.5}
    for name, value in cases.items():
        bad = clean.copy()
        bad[10:20, 30:40, 1] = value
        cv2.imwrite(str(tmp_path / name), bad)
    for name, fragment in (("nan.tiff", "non-finite"), ("inf.tiff", "non-finite"), ("big.tiff", "[0, 1]")):
        res = runner.invoke(app, ["predict", str(identity_onnx), str(tmp_path / name), "-o", str(tmp_path / "o")])
        line = _one_line(res)
        assert name in line and fragment in line, line
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []
    cv2.imwrite(str(tmp_path / "ok.tiff"), clean)  # float in [0, 1]: the documented rule, x255
    np.testing.assert_array_equal(read_image(tmp_path / "ok.tiff"), np.rint(clean[:, :, ::-1] * 255).astype(np.uint8))


# -- an image too large to decode -------------------------------------------------------------------------------
def _png_header_only(path: Path, h: int, w: int) -> None:
    """A small PNG file that declares h x w RGB pixels (its data is cut short, as a bomb's would not be)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * w) * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_an_image_over_max_pixels_is_refused_before_decoding(tmp_path: Path, identity_onnx: Path) -> None:
    _png_header_only(tmp_path / "bomb.png", 50000, 50000)
    assert header_size(tmp_path / "bomb.png") == (50000, 50000)
    line = _one_line(runner.invoke(app, ["predict", str(identity_onnx), str(tmp_path / "bomb.png"), "-o",
                                         str(tmp_path / "o")]))  # fmt: skip
    assert "50000x50000" in line and "--max-pixels" in line
    cv2.imwrite(str(tmp_path / "small.jpg"), synthetic_images([(64, 96)], seed=2)[0])
    line = _one_line(runner.invoke(app, ["predict", str(identity_onnx), str(tmp_path / "small.jpg"), "-o",
                                         str(tmp_path / "o"), "--max-pixels", "1000"]))  # fmt: skip
    assert "64x96" in line and "limit of 1000 pixels" in line
    res = runner.invoke(app, ["predict", str(identity_onnx), str(tmp_path / "small.jpg"), "-o", str(tmp_path / "o"),
                              "--max-pixels", "6144"])  # fmt: skip
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".webp"])
def test_header_sizes_match_what_opencv_decodes(tmp_path: Path, ext: str) -> None:
    img = synthetic_images([(37, 53)], seed=4)[0]
    cv2.imwrite(str(tmp_path / f"a{ext}"), img)
    assert header_size(tmp_path / f"a{ext}") == (37, 53)
    with pytest.raises(InputImageError, match="limit of 1960"):
        read_image(tmp_path / f"a{ext}", max_pixels=1960)


# -- memory: the scaled image band by band ---------------------------------------------------------------------
def test_banded_scaling_gives_the_streamed_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past WHOLE_RESIZE_BYTES the scaled image is never made whole: its bands equal the whole ScaledImage
    exactly, and ids equal the argmax of the logits of that image, resized back; against OpenCV's whole-image
    resize they differ by at most one level."""
    import fcnedge.runtime.predictor as predictor_mod
    from fcnedge.runtime.scaled import ScaledImage
    from fcnedge.runtime.upsample import resize_logits

    onnx = make_identity_onnx(tmp_path / "s.onnx", scale=1.25, tile=(96, 128))
    img = synthetic_images([(150, 230)], seed=6)[0]
    scaled = ScaledImage(img, (188, 288))
    whole = scaled.whole()
    for y0 in range(0, 188, 13):
        np.testing.assert_array_equal(scaled.rows(y0, y0 + 40), whole[y0 : y0 + 40])
    opencv = cv2.resize(img, (288, 188), interpolation=cv2.INTER_LINEAR)
    assert np.abs(whole.astype(int) - opencv).max() <= 1
    monkeypatch.setattr(predictor_mod, "WHOLE_RESIZE_BYTES", 0)
    pred = open_predictor(onnx, threads=1)
    mean, std = np.array(pred.meta.mean), np.array(pred.meta.std)
    planes = ((whole / 255.0 - mean) / std).transpose(2, 0, 1).astype(np.float32)
    np.testing.assert_array_equal(pred.predict(img), resize_logits(planes, (150, 230)).argmax(0))


# -- third-party noise and standard output, in a real process (a test runner's capture hides file descriptor 2) --
def _cli(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "fcnedge", *args], cwd=cwd, env=env, text=True, timeout=300,
                          check=False, **{"capture_output": True, **kw})  # fmt: skip


def test_native_library_noise_stays_off_stderr_unless_verbose(tmp_path: Path, identity_onnx: Path) -> None:
    png = cv2.imencode(".png", synthetic_images([(64, 96)], seed=3)[0])[1].tobytes()
    broken = bytearray(png)
    broken[45] ^= 0xFF  # inside IHDR/IDAT: libpng prints a CRC error line of its own
    (tmp_path / "crc.png").write_bytes(bytes(broken))
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)  # FFmpeg: moov atom not found
    res = _cli(["predict", str(identity_onnx), "crc.png", "-o", "o"], tmp_path)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [res.stderr.strip()], res.stderr
    assert "crc.png" in res.stderr and "cannot be decoded" in res.stderr
    res = _cli(["demo", str(identity_onnx), "--source", "bad.mp4", "--headless", "--max-frames", "2"], tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "bad.mp4" in res.stderr
    loud = _cli(["-v", "predict", str(identity_onnx), "crc.png", "-o", "o2"], tmp_path)
    assert loud.returncode == 2 and len(loud.stderr.strip().splitlines()) > 1  # -v shows the rest


def test_standard_output_that_cannot_be_written(tmp_path: Path, identity_onnx: Path) -> None:
    for args in (["info", str(identity_onnx)], ["models"]):
        with open("/dev/full", "w") as full:
            res = _cli(args, tmp_path, stdout=full, capture_output=False, stderr=subprocess.PIPE)
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip().splitlines() == ["error: could not write to standard output (No space left on "
                                                   "device): send it to a file or a device with space"]  # fmt: skip


def test_a_fixed_size_model_is_benched_and_quantised_at_its_size(tmp_path: Path) -> None:
    """bench without --shape times a fixed-size model at its only size (it blamed a --tile nobody gave);
    quantisation calibrates it at that size (a smaller image padded up, as predict feeds it)."""
    fixed = make_identity_onnx(tmp_path / "fixed.onnx", fixed_hw=(128, 128))
    res = runner.invoke(app, ["bench", str(fixed), "--runs", "2", "--no-roofline", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads((tmp_path / "b" / "report.json").read_text())["rows"]
    assert rows and all(r["shape"] == "128x128" for r in rows)
    imgs = tmp_path / "calib"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.png"), synthetic_images([(64, 96)], seed=1)[0])
    res = runner.invoke(app, ["quantize", str(fixed), "-o", str(tmp_path / "q.onnx"), "--calib-data", str(imgs),
                              "--calib-format", "images", "--calib-count", "1", "--quantize-upsampling"])  # fmt: skip
    assert res.exit_code == 0, res.output
    pred = open_predictor(tmp_path / "q.onnx", threads=1)
    assert pred.predict(synthetic_images([(64, 96)], seed=2)[0]).shape == (64, 96)


def test_a_final_name_that_fits_gets_a_temporary_name_that_fits(tmp_path: Path, identity_onnx: Path) -> None:
    """The temporary file beside a 254-byte mask name would exceed 255 bytes if it held the whole name."""
    stem = "b" * 250
    cv2.imwrite(str(tmp_path / f"{stem}.png"), synthetic_images([(64, 96)], seed=8)[0])
    res = runner.invoke(app, ["predict", str(identity_onnx), str(tmp_path / f"{stem}.png"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert [p.name for p in (tmp_path / "o").iterdir()] == [f"{stem}.png"]
