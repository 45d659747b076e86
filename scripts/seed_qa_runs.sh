#!/usr/bin/env bash
# The training runs behind questions 1, 3 and 5 of docs/seed-qa.md: nine short Lite0 runs with one recipe and budget
# (3 epochs, checkpoint chosen on the held-out training sequence 0006R0, val scored once at the end), each exported
# to fp32 ONNX, then one interleaved bench of all nine on CamVid val (latency at 320x480, 2 threads, and mIoU through
# the tiler). About 45 minutes on 2 cores; a run whose checkpoint exists is kept (FORCE=1 redoes it). Run it when no
# benchmark is using the same cores. Tables: .venv/bin/python scripts/seed_qa.py --runs runs/seed-qa
set -euo pipefail
cd "$(dirname "$0")/.."
# The question heads (32s-mid128, 32s-x2, 32s-bicubic) and --upsampling-init random lost and left the package in
# fcnedge 0.3.0: these runs need 0.2.0, e.g. git worktree add ../fcnedge-0.2 18c391b, and this script run there.
if ! .venv/bin/fcnedge train --help | grep -q -- --upsampling-init; then
  echo "seed_qa_runs.sh: questions 1, 3 and 5 ran on fcnedge 0.2.0, whose question heads have left the package: run it in a checkout of 18c391b (git worktree add ../fcnedge-0.2 18c391b)" >&2
  exit 2
fi
CAMVID=${CAMVID:-../shared/datasets/camvid}
D=${SEED_QA_DIR:-runs/seed-qa}
mkdir -p "$D"
fe=.venv/bin/fcnedge
common=(--data "$CAMVID" --format camvid --arch fcn_efficientnet_lite0 --epochs 3 --batch-size 8 --crop 352x480
        --scale 0.75,1.5 --class-weighting --select-on 0006R0 --workers 2 --seed 0 --force)
# name: options (all 32s heads except 8s; upsampling trained unless frozen)
runs=(
  "32s:--head 32s"
  "32s-mid128:--head 32s-mid128"
  "8s:--head 8s"
  "32s-x2:--head 32s-x2"
  "bilinear-frozen:--head 32s --freeze-upsampling"
  "bicubic-frozen:--head 32s-bicubic --freeze-upsampling"
  "bicubic-trained:--head 32s-bicubic"
  "random-frozen:--head 32s --freeze-upsampling --upsampling-init random"
  "random-trained:--head 32s --upsampling-init random"
)
onnx=()
for r in "${runs[@]}"; do
  name=${r%%:*}; read -r -a opts <<< "${r#*:}"
  if [[ ! -f "$D/$name.pt" || -n "${FORCE:-}" ]]; then
    echo "== train $name (${opts[*]})"
    $fe train "${common[@]}" "${opts[@]}" -o "$D/$name.pt" 2>&1 | tail -1
  fi
  if [[ ! -f "$D/$name.onnx" || "$D/$name.pt" -nt "$D/$name.onnx" ]]; then
    $fe export "$D/$name.pt" -o "$D/$name.onnx" --threads 2 --force > "$D/export-$name.txt"
  fi
  onnx+=("$D/$name.onnx")
done
$fe bench "${onnx[@]}" --threads 2 --data "$CAMVID" --no-roofline --out "$D/bench" --force | tee "$D/bench.txt"
.venv/bin/python scripts/seed_qa.py --runs "$D"
