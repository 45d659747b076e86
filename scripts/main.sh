#!/usr/bin/env bash
# The main job: create (or reuse) .venv, install fcnedge, and benchmark the bundled default model
# (PyTorch eager vs ONNX Runtime fp32 vs int8, and plain OpenVINO on the same files, on identical inputs). With CamVid at ../shared/datasets/camvid
# (or $CAMVID) it also measures mIoU on CamVid val. Extra arguments go to `fcnedge bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_env.sh
CAMVID=${CAMVID:-../shared/datasets/camvid}
args=(--out runs/bench-default --force)  # the main job is re-runnable: it replaces its own report
# fcnedge's rows and the plain-OpenVINO references on the same files (bf16 where this CPU computes it)
variants=torch,fp32,int8,openvino,openvino-int8
if .venv/bin/python -c "from fcnedge.benchmarks.variants import openvino_bf16_available as a; raise SystemExit(not a())"; then
  variants+=,openvino-bf16
fi
args+=(--variants "$variants")
if [ -d "$CAMVID/val" ]; then
  args+=(--data "$CAMVID")
fi
exec .venv/bin/fcnedge bench "${args[@]}" "$@"
