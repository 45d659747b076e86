#!/usr/bin/env bash
# Frozen (bilinear) vs trained upsampling for the bundled architecture, same data, seed and recipe, a short
# schedule (4 epochs each, ~25 minutes on 2 cores): val mIoU from training, end-to-end latency from one bench run.
set -euo pipefail
cd "$(dirname "$0")/.."
CAMVID=${CAMVID:-../shared/datasets/camvid}
D=runs/upsampling-ab
mkdir -p "$D"
fe=.venv/bin/fcnedge
common=(--data "$CAMVID" --format camvid --arch fcn_efficientnet_lite0 --head 8s --epochs 4 --batch-size 8
        --crop 352x480 --scale 0.75,1.5 --class-weighting --workers 2 --seed 0 --force)
$fe train "${common[@]}" --freeze-upsampling -o "$D/frozen.pt" 2>&1 | tail -1
$fe train "${common[@]}" --no-freeze-upsampling -o "$D/trained.pt" 2>&1 | tail -1
for m in frozen trained; do
  $fe export "$D/$m.pt" -o "$D/$m.onnx" --threads 2 --force > "$D/export-$m.txt"
done
$fe bench "$D/frozen.onnx" "$D/trained.onnx" --threads 2 --data "$CAMVID" --no-roofline --out "$D/bench" --force \
  | tee "$D/bench.txt"
