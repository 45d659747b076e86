#!/usr/bin/env bash
# Re-measure every figure quoted in README.md and MODEL_CARD.md (needs CamVid at $CAMVID; about 15 minutes on
# 2 cores). Each step is one fcnedge command; outputs go to runs/figures/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_env.sh
CAMVID=${CAMVID:-../shared/datasets/camvid}
F=runs/figures
mkdir -p "$F"
fe=.venv/bin/fcnedge

# 1. bundled model: every variant on identical inputs, with CamVid val mIoU (issue: bench)
$fe bench --variants torch,torch-compile,fp32,int8,openvino --threads 2 --data "$CAMVID" --calib-data "$CAMVID" \
  --profile --out "$F/bench-default" --force | tee "$F/bench-default.txt"

# 2. the seed's ResNet-18 FCN (K=21, untrained: latency only), the issue's reference model
$fe bench fcn_resnet18 --num-classes 21 --variants torch,torch-compile,fp32,int8,openvino --threads 2 --calib-data "$CAMVID" \
  --profile --out "$F/bench-r18" --force | tee "$F/bench-r18.txt"

# 3. export + simplify + quantise wall time, sizes, parity, int8 mIoU drop (issue: export)
$fe export fcn_resnet18 --num-classes 21 -o "$F/r18.int8.onnx" --quantize int8 --calib-data "$CAMVID" \
  --calib-count 32 --threads 2 --force | tee "$F/export-r18.txt"
$fe export -o "$F/default.int8.onnx" --quantize int8 --calib-data "$CAMVID" --calib-count 32 \
  --eval-data "$CAMVID" --threads 2 --force | tee "$F/export-default.txt"
$fe export -o "$F/default.fp32.onnx" --threads 2 --force
$fe quantize "$F/default.fp32.onnx" -o "$F/default.fp16.onnx" --quantize fp16 --force

# 4. runtime: tiled overhead, large images, batching (issue: runtime)
for m in fp32 int8; do
  $fe bench-runtime "$F/default.$m.onnx" --out "$F/runtime-$m" --force | tee "$F/runtime-$m.txt"
done

# 5. demo: 640x480 video made from CamVid val frames, fp32 and int8 (issue: demo)
.venv/bin/python - "$CAMVID" "$F/camvid640.mp4" <<'PY'
import sys, pathlib, cv2
src, dst = pathlib.Path(sys.argv[1]) / "val", sys.argv[2]
w = cv2.VideoWriter(dst, cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (640, 480))
for p in sorted(src.glob("*.png")):
    w.write(cv2.resize(cv2.imread(str(p)), (640, 480), interpolation=cv2.INTER_LINEAR))
w.release()
PY
for m in fp32 int8; do
  $fe demo "$F/default.$m.onnx" --source "$F/camvid640.mp4" --headless --threads 2 \
    --record "$F/demo-$m.mp4" --force | tee "$F/demo-$m.txt"
done
