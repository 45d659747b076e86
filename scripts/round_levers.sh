#!/usr/bin/env bash
# This round's CPU levers for issue 12 and the flip-TTA lever of issue 14, each printed and saved under
# runs/levers/ (about 15 minutes on 2 cores; run it when nothing else uses the cores):
#   1. uint8 input (scripts/lever_uint8.py): the int8 file with and without its input QuantizeLinear
#   2. weight types: int8 7-bit (also with --uint8-input), int8 8-bit, uint8 asymmetric weights, against fp32, one
#      interleaved bench
#   3. fcnedge tune on the bundled default at CamVid's 360x480 (engines x threads x tiles per call)
#   4. flip test-time augmentation: eval of the bundled default with and without --flip-tta
set -euo pipefail
cd "$(dirname "$0")/.."
CAMVID=${CAMVID:-../shared/datasets/camvid}
D=runs/levers
mkdir -p "$D"
fe=.venv/bin/fcnedge
py=.venv/bin/python
echo "== 1. uint8 input"
[[ -f "$D/uint8.json" && -z "${FORCE:-}" ]] || $py scripts/lever_uint8.py --runs 90 --json "$D/uint8.json"
echo "== 2. weight types"
ck=fcnedge/models/weights/fcn_lite0_camvid.pt
$fe export "$ck" -o "$D/fp32.onnx" --threads 2 --force > "$D/export-fp32.txt"
q=(--quantize int8 --calib-data "$CAMVID" --calib-count 32 --force)
$fe quantize "$D/fp32.onnx" -o "$D/int8-7bit.onnx" "${q[@]}" --reduce-range > "$D/q-7bit.txt"
$fe quantize "$D/fp32.onnx" -o "$D/int8-8bit.onnx" "${q[@]}" --full-range > "$D/q-8bit.txt"
$fe quantize "$D/fp32.onnx" -o "$D/uint8w.onnx" "${q[@]}" --full-range --weight-type uint8 > "$D/q-u8w.txt"
$fe export "$ck" -o "$D/int8-7bit-u8in.onnx" "${q[@]}" --threads 2 --reduce-range --uint8-input \
  > "$D/export-u8in.txt"
$fe bench "$D/fp32.onnx" "$D/int8-7bit.onnx" "$D/int8-7bit-u8in.onnx" "$D/int8-8bit.onnx" "$D/uint8w.onnx" \
  --threads 2 --runs 60 \
  --data "$CAMVID" --no-roofline --out "$D/bench-weights" --force | tee "$D/bench-weights.txt"
echo "== 3. tune (the bundled default, 360x480; --dry-run: the package folder is left alone)"
$fe tune --shape 360x480 --runs 30 --dry-run | tee "$D/tune.txt"
echo "== 4. flip TTA"
$fe eval --data "$CAMVID" --threads 2 --json > "$D/eval-plain.json"
$fe eval --data "$CAMVID" --threads 2 --flip-tta --json > "$D/eval-flip.json"
$py - "$D" <<'PY'
import json, sys
d = sys.argv[1]
for k in ("plain", "flip"):
    e = json.load(open(f"{d}/eval-{k}.json"))
    thin = {c: round(e["per_class_iou"][c], 3) for c in ("Pole", "SignSymbol", "Pedestrian", "Bicyclist")}
    print(f"{k}: val mIoU {e['miou']:.4f}, {e['ms_per_image_p50']:.1f} ms/image, {thin}")
PY
