#!/usr/bin/env bash
# Create (or reuse) .venv, install fcnedge with its extras, then run ruff, mypy, the import contracts, the docs
# build and pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_env.sh
echo "== ruff"
"$VPY" -m ruff check .
"$VPY" -m ruff format --check .
echo "== mypy (on an installed copy: the package-dir mapping is invisible to static tools)"
rm -rf .typecheck build
"$VPY" -m pip install -q --no-deps --target .typecheck .
(cd .typecheck && ../.venv/bin/python -m mypy -p fcnedge)
echo "== import contracts (layers: core -> runtime -> exporters -> benchmarks -> apps; pyproject.toml)"
(cd .typecheck && ../.venv/bin/lint-imports --config ../pyproject.toml --no-cache)
echo "== docs (the site in docs/, warnings are errors)"
NO_MKDOCS_2_WARNING=1 "$VPY" -m mkdocs build --strict -q --site-dir build/site
echo "== pytest"
"$VPY" -m pytest -q "$@"
