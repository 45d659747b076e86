#!/usr/bin/env bash
# The main job: create (or reuse) .venv, install fcnedge, and benchmark the bundled default model
# (PyTorch eager vs ONNX Runtime fp32 vs int8 on identical inputs). With CamVid at ../shared/datasets/camvid
# (or $CAMVID) it also measures mIoU on CamVid val. Extra arguments go to `fcnedge bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_env.sh
CAMVID=${CAMVID:-../shared/datasets/camvid}
args=(--out runs/bench-default --force)  # the main job is re-runnable: it replaces its own report
if [ -d "$CAMVID/val" ]; then
  args+=(--data "$CAMVID")
fi
exec .venv/bin/fcnedge bench "${args[@]}" "$@"
