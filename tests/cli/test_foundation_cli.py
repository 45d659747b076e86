from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fcnedge.cli import app

runner = CliRunner()


def test_models_lists_architectures() -> None:
    pytest.importorskip("torch")
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0
    names = [line.split()[0] for line in res.stdout.splitlines() if line.strip()]
    for name in ("fcn_resnet18", "fcn_resnet34", "fcn_resnet50", "fcn_efficientnet_lite0", "tv_fcn_resnet50"):
        assert name in names


def test_info_prints_checkpoint_meta(tiny_checkpoint: Path) -> None:
    res = runner.invoke(app, ["info", str(tiny_checkpoint)])
    assert res.exit_code == 0, res.output
    assert "fcn_tiny" in res.stdout and "class_4" in res.stdout
    res = runner.invoke(app, ["info", str(tiny_checkpoint), "--json"])
    data = json.loads(res.stdout)
    assert data["meta"]["num_classes"] == 5
    assert data["meta"]["schema_version"] == 2
    assert data["parameters"] > 1000


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b"\x00" * 10), "corrupt or truncated"),
        (lambda p: p.write_bytes(b""), "empty"),
    ],
)
def test_info_bad_files_exit_2_one_line(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    p = tmp_path / "m.pt"
    make(p)
    res = runner.invoke(app, ["info", str(p)])
    assert res.exit_code == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.output


BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.') or name.startswith('torchvision'):\n"
    "            raise ImportError('torch blocked for this test')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def _run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_runtime_and_help_work_without_torch() -> None:
    res = _run_blocked(
        "import fcnedge.runtime, fcnedge, fcnedge.cli\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(fcnedge.cli.app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules\n"
        "print('OK', 'models' in r.output)\n"
    )
    assert res.returncode == 0, res.stderr
    assert "OK True" in res.stdout


def test_torch_commands_say_what_to_install_without_torch(tmp_path: Path) -> None:
    res = _run_blocked(
        "from typer.testing import CliRunner\nimport fcnedge.cli\n"
        f"r = CliRunner().invoke(fcnedge.cli.app, ['train', '--data', {str(tmp_path)!r}])\n"
        "print(r.exit_code); print(r.stderr)\n"
    )
    assert res.returncode == 0, res.stderr
    code, msg = res.stdout.split("\n", 1)
    assert code == "2"
    assert "pip install 'fcnedge[torch]'" in msg


def test_models_lists_the_bundled_models_without_torch() -> None:
    res = _run_blocked(
        "from typer.testing import CliRunner\nimport fcnedge.cli\n"
        "r = CliRunner().invoke(fcnedge.cli.app, ['models'])\n"
        "print(r.exit_code); print(r.stdout)\n"
    )
    assert res.returncode == 0, res.stderr
    code, text = res.stdout.split("\n", 1)
    assert code == "0"
    assert "fcn_lite0_camvid" in text and "CC BY-NC 4.0" in text
    assert "pip install 'fcnedge[torch]'" in text  # where the architectures are


def test_info_is_one_screen_and_all_shows_everything() -> None:
    res = runner.invoke(app, ["info"])
    assert res.exit_code == 0, res.output
    assert "fcn_efficientnet_lite0" in res.stdout and "fcn_lite0_camvid" in res.stdout
    assert "onnxsim." not in res.stdout and "--all" in res.stdout
    assert len(res.stdout.splitlines()) <= 25
    full = runner.invoke(app, ["info", "--all"])
    assert full.exit_code == 0 and "onnxsim." in full.stdout
