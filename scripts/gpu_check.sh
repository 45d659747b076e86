#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and a CUDA 13 driver: installs the GPU build of ONNX Runtime in
# place of the CPU one, runs the gpu-marked tests, then benchmarks the bundled model on CUDA (and TensorRT when
# its libraries are present). Writes runs/gpu/{env.txt,pytest.txt,bench-cuda/,bench-tensorrt/}.
# Usage: bash scripts/gpu_check.sh [WHEEL_DIR]   (WHEEL_DIR: a folder holding the onnxruntime-gpu wheel, offline)
set -uo pipefail
cd "$(dirname "$0")/.."
FCNEDGE_EXTRAS=${FCNEDGE_EXTRAS:-torch,dev} . scripts/_env.sh
OUT=runs/gpu
mkdir -p "$OUT"
# onnxruntime and onnxruntime-gpu share one package folder: remove both, then install the GPU build alone
"$VPY" -m pip uninstall -q -y onnxruntime onnxruntime-gpu
if [ $# -ge 1 ]; then
  "$VPY" -m pip install -q --no-index --find-links "$1" onnxruntime-gpu==1.31.1 || exit 2
else
  "$VPY" -m pip install -q onnxruntime-gpu==1.31.1 || exit 2
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  "$VPY" -c "import onnxruntime as o; print(o.__version__, o.get_available_providers())"; } | tee "$OUT/env.txt"
"$VPY" -m pytest -q -m gpu -rs tests/runtime/test_gpu.py 2>&1 | tee "$OUT/pytest.txt"
fe=.venv/bin/fcnedge
$fe bench --provider cuda --variants torch,fp32,fp16 --threads 2 --no-roofline --out "$OUT/bench-cuda" --force \
  2>&1 | tee "$OUT/bench-cuda.txt"
$fe bench --provider tensorrt --variants fp32 --threads 2 --no-roofline --out "$OUT/bench-tensorrt" --force \
  2>&1 | tee "$OUT/bench-tensorrt.txt"   # strict: says so in one line when TensorRT's libraries are absent
echo "reports in $OUT"
