"""Recipes as config: `fcnedge train --config recipe.yaml [--option ...]`, `--print-config`, and the bundled
model's recipe files, which resolve to exactly the command lines it was trained with."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from helpers import write_folder_dataset
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.config import build_config, coerce, read_recipe
from fcnedge.errors import ConfigError

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _printed(args: list[str]) -> dict:
    res = runner.invoke(app, ["train", *args, "--print-config"])
    assert res.exit_code == 0, res.output
    return yaml.safe_load(res.stdout)


def _documented_commands() -> list[list[str]]:
    """The train command lines of docs/recipe.md that name their data (the stages as they ran), in order."""
    joined = (ROOT / "docs" / "recipe.md").read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip().startswith("fcnedge train --data")]
    return [shlex.split(line)[2:] for line in lines]


def test_the_bundled_recipe_files_are_the_documented_command_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    commands = _documented_commands()
    files = sorted((ROOT / "recipes").glob("bundled-stage*.yaml"))
    assert len(commands) == len(files) == 6
    for args, recipe in zip(commands, files, strict=True):
        want = _printed(args)
        got = _printed(["--config", str(recipe)])
        assert Path(got.pop("data")).resolve() == Path(want.pop("data")).resolve()  # beside the file vs the root
        assert got == want, recipe.name


def test_options_given_override_the_recipe_and_the_rest_keep_it(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: d\nepochs: 7\ncrop: 352x480\nscale: [0.75, 1.5]\nselect_sequences: [0006R0]\n")
    got = _printed(["--config", str(recipe), "--epochs", "2", "--workers", "1"])
    assert got["epochs"] == 2 and got["threads"] == 1  # given on the command line: wins
    assert got["crop"] == [352, 480] and got["scale"] == [0.75, 1.5] and got["select_sequences"] == ["0006R0"]
    assert Path(got["data"]) == tmp_path / "d"  # relative to the recipe's folder
    assert got["out"] == "model.pt" and got["batch_size"] == 8  # the defaults
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(got))
    assert _printed(["--config", str(again)]) == got  # --print-config writes a recipe that reads back the same


def test_a_recipe_trains(tmp_path: Path) -> None:
    """A real run from a recipe file (fcn_tiny on a small labelled folder), one option overridden."""
    pytest.importorskip("torch")
    data = write_folder_dataset(tmp_path / "d", classes=3, shapes=[(64, 96)] * 4, split="train")
    write_folder_dataset(tmp_path / "d", classes=3, shapes=[(64, 96)] * 2, split="val")
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        "data: d\nfmt: folder\narch: fcn_tiny\npretrained_backbone: false\nnum_classes: 3\nepochs: 5\n"
        f"crop: 64x96\nbatch_size: 2\nout: {tmp_path / 'tiny.pt'}\n"
    )
    res = runner.invoke(app, ["train", "--config", str(recipe), "--epochs", "1"])
    assert res.exit_code == 0, res.output
    log = yaml.safe_load((tmp_path / "tiny.log.json").read_text())
    assert len(log["history"]) == 1 and (tmp_path / "tiny.pt").is_file() and data.is_dir()
    assert log["config"]["epochs"] == 1 and log["config"]["arch"] == "fcn_tiny"
    assert "val per-class IoU" in res.stdout and "class_2" in res.stdout  # the table the run stands on
    png = tmp_path / "tiny.results.png"
    if __import__("importlib").util.find_spec("matplotlib"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot {png}" in res.stdout
    else:
        assert "no plot" in res.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: d\nepoch: 3\n", "unknown setting 'epoch' (did you mean epochs?)"),
        ("data: d\ncrop: 320\n", "crop 320 is invalid: give HxW"),
        ("data: d\nfmt: jpeg\n", "fmt 'jpeg' is invalid: choose from"),
        ("data: d\nepochs: 2.5\n", "epochs 2.5 is invalid: give a whole number"),
        ("data: d\nfreeze_upsampling: maybe\n", "is invalid: give true or false"),
        ("- data\n", "holds a list, not a mapping"),
        ("data: [unclosed\n", "cannot be read as YAML"),
    ],
)
def test_a_bad_recipe_is_one_line_exit_2(tmp_path: Path, text: str, message: str) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    res = runner.invoke(app, ["train", "--config", str(recipe), "--print-config"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_no_data_anywhere_and_a_missing_recipe(tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "--print-config"])
    assert res.exit_code == 2 and "no dataset: pass --data DIR, or data: in the --config recipe" in res.stderr
    res = runner.invoke(app, ["train", "--config", str(tmp_path / "none.yaml")])
    assert res.exit_code == 2 and "recipe" in res.stderr and "does not exist" in res.stderr


def test_coercion_is_one_place_for_every_field_type(tmp_path: Path) -> None:
    from fcnedge.train import TrainConfig

    values = {"data": "d", "out": "o.pt", "crop": "352X480", "scale": "0.5,2", "select_sequences": "0006R0,0001TP"}
    values.update({"infer_tile": None, "fmt": "folder", "epochs": "3"})
    cfg = build_config(TrainConfig, values, where="test")
    assert cfg.crop == (352, 480) and cfg.scale == (0.5, 2.0) and cfg.select_sequences == ("0006R0", "0001TP")
    assert cfg.infer_tile is None and cfg.fmt.value == "folder" and cfg.epochs == 3 and cfg.data == Path("d")
    with pytest.raises(ConfigError, match="names nothing"):
        coerce(",", tuple[str, ...], what="--select-on")
    (tmp_path / "r.yaml").write_text("data: /abs/data\n")
    assert read_recipe(tmp_path / "r.yaml")["data"] == "/abs/data"  # absolute paths kept


def test_help_shows_the_everyday_options_first() -> None:
    """train, export, predict, bench and demo keep at most 15 / 12 / 12 / 12 / 12 options in --help's first panel;
    the rest are grouped."""
    import typer.main

    cmd = typer.main.get_command(app)
    limits = {"train": 15, "export": 12, "predict": 12, "bench": 12, "demo": 12}
    for name, limit in limits.items():
        opts = [p for p in cmd.commands[name].params if p.param_type_name == "option"]  # type: ignore[attr-defined]
        first = [p.name for p in opts if getattr(p, "rich_help_panel", None) is None]
        assert len(first) <= limit, (name, first)
        assert len(opts) > len(first)  # the rest in named panels, not dropped
    res = runner.invoke(app, ["train", "--help"])
    assert res.exit_code == 0 and "Augmentation" in res.output and "Selection and schedule" in res.output


def test_one_name_per_idea_with_the_old_names_kept() -> None:
    """train's thread count is --threads like every other command (--workers still works); predict's Ray images
    per call is --ray-batch-size, not to be confused with --batch (tiles per session call)."""
    res = runner.invoke(app, ["train", "--data", "d", "--threads", "3", "--print-config"])
    assert res.exit_code == 0 and yaml.safe_load(res.stdout)["threads"] == 3
    res = runner.invoke(app, ["train", "--data", "d", "--workers", "2", "--print-config"])
    assert res.exit_code == 0 and yaml.safe_load(res.stdout)["threads"] == 2
