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
    and the training-side tools (the training loop and the class-bias fit, which run models through the runtime's
    predictor, like fcnedge eval) sit above it."""
    above = ("fcnedge/cli/", "fcnedge/demo/", "fcnedge/train.py", "fcnedge/class_bias.py")
    bad = [
        n
        for n, t in sources().items()
        if n.startswith("fcnedge/")
        and not n.startswith(above)
        and re.search(r"^\s*(from|import) fcnedge\.runtime", t, re.M)
    ]
    assert bad == []
