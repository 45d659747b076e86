#!/usr/bin/env bash
# Reproduce the numbers in docs/seed-qa.md (questions 2, 4 and 6; about a minute). Questions 1, 3 and 5 need
# training runs and are listed at the end of that page as not measured yet.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_env.sh
exec .venv/bin/python scripts/seed_qa.py
