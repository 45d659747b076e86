#!/usr/bin/env bash
# Reproduce every number in docs/seed-qa.md: questions 2, 4 and 6 (scripts/seed_qa.py, about a minute), then
# questions 1, 3 and 5 (scripts/seed_qa_runs.sh: nine short CamVid training runs, their exports and one bench;
# about 50 minutes on 2 cores the first time, a few minutes when the trained checkpoints exist; FORCE=1 retrains).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_env.sh
.venv/bin/python scripts/seed_qa.py
bash scripts/seed_qa_runs.sh
