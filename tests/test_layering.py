"""Architecture rules, checked on the source: one seam opens models; layers import downwards only."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fcnedge", "exporters", "runtime", "benchmarks")


def sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def test_only_the_seam_constructs_sessions_and_predictors() -> None:
    pattern = re.compile(r"(?<![\w.])(Session|TiledPredictor)\(")
    offenders = [
        f"{name}:{i + 1}"
        for name, text in sources().items()
        if name != "runtime/open.py"
        for i, line in enumerate(text.splitlines())
        if pattern.search(line) and not line.lstrip().startswith(("class ", "#", '"""'))
    ]
    assert offenders == []


def test_runtime_never_imports_torch() -> None:
    bad = [
        n for n, t in sources().items() if n.startswith("runtime/") and re.search(r"^\s*(import|from) torch", t, re.M)
    ]
    assert bad == []


def test_core_does_not_import_runtime() -> None:
    """Core (meta, specs, data, evaluation, models, catalog, sources, ...) sits below runtime; the CLI, the demo
    and the training loop (which runs models through the runtime's predictor, like fcnedge eval) sit above it."""
    above = ("fcnedge/cli/", "fcnedge/demo/", "fcnedge/train.py")
    bad = [
        n
        for n, t in sources().items()
        if n.startswith("fcnedge/")
        and not n.startswith(above)
        and re.search(r"^\s*(from|import) fcnedge\.runtime", t, re.M)
    ]
    assert bad == []


def _mapped_copy(dest: Path) -> Path:
    """The package as it installs (the top-level folders mapped into fcnedge/), for static import analysis."""
    import shutil

    pkg = dest / "fcnedge"
    shutil.copytree(ROOT / "fcnedge", pkg, ignore=shutil.ignore_patterns("weights", "__pycache__"))
    for sub in ("exporters", "runtime", "benchmarks"):
        shutil.copytree(ROOT / sub, pkg / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def test_import_contracts_hold_and_catch_a_planted_back_import(tmp_path: Path) -> None:
    """pyproject.toml's import-linter contracts pass on the package, and fail when runtime imports upwards."""
    import shutil
    import subprocess

    lint = shutil.which("lint-imports") or str(Path(__import__("sys").executable).with_name("lint-imports"))
    if not Path(lint).exists():
        import pytest

        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    pkg = _mapped_copy(tmp_path)
    cmd = [lint, "--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    ok = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stdout[-2000:]
    planted = pkg / "runtime" / "colors.py"
    planted.write_text(planted.read_text() + "\nfrom fcnedge.exporters import torch_sources  # noqa\n")
    bad = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode != 0
    assert "fcnedge.runtime.colors -> fcnedge.exporters.torch_sources" in bad.stdout


def test_no_engine_session_is_made_outside_the_seam() -> None:
    """ONNX Runtime sessions are made in runtime/session.py only (the model's Session, and inspection_session for
    graph checks, profiles and the argmax kernel); OpenVINO compiles in runtime/openvino_engine.py only."""
    allowed = {"InferenceSession(": {"runtime/session.py"}, "compile_model(": {"runtime/openvino_engine.py"}}
    offenders = [
        f"{name}:{i + 1}: {call}"
        for name, text in sources().items()
        for i, line in enumerate(text.splitlines())
        for call, where in allowed.items()
        if call in line and name not in where and not line.lstrip().startswith("#")
    ]
    assert offenders == []
