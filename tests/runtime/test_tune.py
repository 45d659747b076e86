"""fcnedge tune: real sessions timed, the pick written beside the model, and used only where it is valid."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.data.synthetic import synthetic_images
from fcnedge.runtime import open_predictor
from fcnedge.runtime.tune import Candidate, file_sha256, read_tuned, tune, tune_locations, write_tuned

runner = CliRunner()


@pytest.fixture()
def model(tiny_onnx: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FCNEDGE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx[0], path)
    return path


def _report(model: Path, provider: str = "cpu", threads: int = 1, batch: int = 2) -> dict:
    img = synthetic_images([(64, 96)])[0]
    report = tune(model, img, [Candidate("cpu", 0, 4), Candidate(provider, threads, batch)], runs=3, rounds=1)
    report["pick"] = {"provider": provider, "threads": threads, "batch": batch, "p50_ms": 1.0}
    return report


def test_tune_times_real_sessions_and_the_pick_is_used_only_when_not_given(model: Path) -> None:
    report = _report(model)
    assert [r["kept"] for r in report["rows"]] == [True, True]
    assert all(r["agreement"] == 1.0 and r["p50_ms"] > 0 for r in report["rows"])
    beside, _ = tune_locations(model)
    write_tuned(beside, report)
    pred = open_predictor(model, providers=None, threads=None, batch=None)
    assert pred.tuned is not None and pred.tuned.path == beside
    assert pred.session.spec.threads == 1 and pred.spec.batch == 2
    explicit = open_predictor(model, threads=2)  # everything given: the tune file is not read
    assert explicit.tuned is None and explicit.session.spec.threads == 2 and explicit.spec.batch == 4


@pytest.mark.parametrize("damage", ["host", "model", "garbage"])
def test_a_tune_file_for_another_machine_or_model_is_ignored(
    model: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    beside, _ = tune_locations(model)
    report = _report(model)
    if damage == "host":
        report["host"]["cpu"] = "another CPU"
    write_tuned(beside, report)
    if damage == "garbage":
        beside.write_text("{not json")
    if damage == "model":  # tuned for other bytes under the same name (a re-export)
        report["model_sha256"] = "0" * 64
        write_tuned(beside, report)
    assert read_tuned(model) is None
    pred = open_predictor(model, providers=None, threads=None, batch=None)
    assert pred.tuned is None and pred.spec.batch == 4
    assert any(w in caplog.text for w in ("another machine", "another version", "unreadable"))


def test_tune_cli_writes_the_pick_and_predict_uses_it(model: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["tune", str(model), "--shape", "64x96", "--runs", "3", "--rounds", "1",
                              "--threads-list", "1,2", "--providers", "cpu"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "pick:" in res.output and "untuned" in res.output
    doc = json.loads((tmp_path / "m.onnx.tune.json").read_text())
    # every configuration on the model as it is and on its exact fast form (made into the cache)
    assert {(r["provider"], r["threads"], r["form"]) for r in doc["rows"]} == {("cpu", 0, "as-is")} | {
        ("cpu", t, f) for t in (1, 2) for f in ("as-is", "fast")
    }
    keys = ("provider", "threads", "batch", "p50_ms", "form")
    assert {k: doc["pick"][k] for k in keys} in [{k: r[k] for k in keys} for r in doc["rows"]]
    assert any("fast form: " in n for n in doc["notes"])
    img = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(img), synthetic_images([(64, 96)])[0])
    res = runner.invoke(app, ["predict", str(model), str(img), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "(tuned: " in res.output
    res = runner.invoke(app, ["predict", str(model), str(img), "-o", str(tmp_path / "o2"), "--provider", "cpu",
                              "--threads", "1", "--batch", "1"])  # fmt: skip
    assert res.exit_code == 0 and "tuned" not in res.output
    a = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "o2" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.mean(a == b) >= 0.999  # the fast form, if picked, gives the same ids to float rounding
    res = runner.invoke(app, ["tune", str(model), "--shape", "64x96", "--runs", "3", "--rounds", "1",
                              "--threads-list", "1", "--providers", "cpu", "--as-is", "--dry-run",
                              "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert {r["form"] for r in json.loads(res.output)["rows"]} == {"as-is"}


def test_a_fast_form_pick_opens_the_fast_file_while_it_is_unchanged(
    model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fcnedge.exporters.standalone import fast_form

    fast, _ = fast_form(model, tmp_path / "fast")
    assert fast is not None
    img = synthetic_images([(64, 96)])[0]
    cands = [Candidate("cpu", 0, 4), Candidate("cpu", 1, 4, "fast")]
    report = tune(model, img, cands, runs=3, rounds=1, fast_path=fast)
    assert [r["form"] for r in report["rows"]] == ["as-is", "fast"] and all(r["kept"] for r in report["rows"])
    report["pick"] = {**report["rows"][1], "file": str(fast), "file_sha256": file_sha256(fast)}
    beside, _ = tune_locations(model)
    write_tuned(beside, report)
    pred = open_predictor(model, providers=None, threads=None, batch=None)
    assert pred.session.path == fast and pred.session.input_dtype is np.uint8
    assert np.mean(pred.predict(img) == open_predictor(model).predict(img)) >= 0.999
    import cv2

    cv2.imwrite(str(tmp_path / "i.png"), img)
    res = runner.invoke(app, ["predict", str(model), str(tmp_path / "i.png"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert f"model {fast} on CPUExecutionProvider: the exact fast form that fcnedge tune picked" in res.stdout
    fast.write_bytes(fast.read_bytes() + b"\0")  # changed after tuning: not trusted
    pred = open_predictor(model, providers=None, threads=None, batch=None)
    assert pred.session.path == model and pred.tuned is not None and pred.session.spec.threads == 1
    assert "missing or changed" in caplog.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--providers", "cuda"], "tune times cpu and/or openvino"),
        (["--threads-list", "x"], "--threads-list 'x' is invalid"),
        (["--threads-list", "0"], "--threads-list [0] is invalid"),
        (["--runs", "1"], "--runs 1"),
    ],
)
def test_tune_bad_options_are_one_line_exit_2(model: Path, tmp_path: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["tune", str(model), *args])
    assert res.exit_code == 2
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx.tune.json").exists()


@pytest.mark.parametrize(("key", "value", "said"), [("threads", -1, "threads -1 is outside"),
                                                    ("provider", "warp", "provider 'warp' is unknown"),
                                                    ("batch", 0, "batch 0 is under 1")])  # fmt: skip
def test_a_bad_value_in_a_tune_file_is_blamed_on_the_file(
    model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, key: str, value: object, said: str
) -> None:
    """Never reported as a --threads or --provider the user did not give: the file is named, and ignored."""
    report = _report(model)
    report["pick"][key] = value
    beside, _ = tune_locations(model)
    write_tuned(beside, report)
    assert read_tuned(model) is None
    assert f"{beside.name} holds an invalid pick ({said}" in caplog.text
    pred = open_predictor(model, providers=None, threads=None, batch=None)
    assert pred.tuned is None and pred.session.spec.threads == 0
