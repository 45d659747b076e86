"""Issue 12, lever 2 (uint8 input), measured before it is built into the exporter: how much does feeding uint8 RGB
straight into an int8 model save against fcnedge's float preprocessing + the model's input QuantizeLinear?

For a model whose normalisation is one affine map for all channels with an integer zero point (EfficientNet-Lite's
(x - 127) / 128, the bundled model), the input QuantizeLinear maps the normalised pixel back to the pixel itself,
so the uint8 model is the int8 model without that node, taking the pixels as its quantised input: the same bits.
This script builds that variant of an int8 QDQ file in memory, checks the class ids agree, and times both paths
interleaved in one process (ONNX Runtime, 2 threads, the input copied into the session's layout each call).

Usage: .venv/bin/python scripts/lever_uint8.py [INT8.onnx ...] [--runs 60] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, numpy_helper

from fcnedge.catalog import Catalog
from fcnedge.data.synthetic import synthetic_images
from fcnedge.host import cpu_flags, cpu_model
from fcnedge.normalize import Normalizer
from fcnedge.runtime.session import read_onnx_meta


def uint8_variant(path: Path) -> bytes:
    """The int8 QDQ model with its input QuantizeLinear removed and a uint8 input in its place."""
    m = onnx.load(str(path))
    g = m.graph
    name = g.input[0].name
    q = next(n for n in g.node if name in n.input)
    if q.op_type != "QuantizeLinear":
        raise SystemExit(f"{path}: the input feeds {q.op_type}, not QuantizeLinear: not an int8 QDQ model")
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    zp = inits[q.input[2]]
    if zp.dtype != np.uint8:
        raise SystemExit(f"{path}: the input zero point is {zp.dtype}, not uint8")
    for n in g.node:
        for i, x in enumerate(n.input):
            if x == q.output[0]:
                n.input[i] = name
    g.node.remove(q)
    g.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    return m.SerializeToString()


def measure(path: Path, img: np.ndarray, so: ort.SessionOptions, runs: int) -> dict[str, object]:
    """Both input paths of one int8 file: agreement, then interleaved timing (3 rounds)."""
    meta, _ = read_onnx_meta(path)
    assert meta is not None
    norm = Normalizer(meta.mean, meta.std)
    f32 = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    u8 = ort.InferenceSession(uint8_variant(path), so, providers=["CPUExecutionProvider"])
    fbuf = np.zeros((1, 3, 320, 480), np.float32)
    ubuf = np.zeros((1, 3, 320, 480), np.uint8)
    names = (f32.get_inputs()[0].name, f32.get_outputs()[0].name)

    def run_float() -> np.ndarray:
        norm.into(img, fbuf[0])
        return f32.run([names[1]], {names[0]: fbuf})[0]

    def run_uint8() -> np.ndarray:
        ubuf[0] = img.transpose(2, 0, 1)
        return u8.run([names[1]], {names[0]: ubuf})[0]

    a, b = run_float(), run_uint8()
    agree = float((a.argmax(1) == b.argmax(1)).mean())
    same_bits = bool(np.array_equal(a, b))
    times: dict[str, list[float]] = {"float": [], "uint8": []}
    for _ in range(3):
        for key, fn in (("float", run_float), ("uint8", run_uint8)):
            for _ in range(runs // 3):
                t0 = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - t0) * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["float"] / med["uint8"]
    print(f"{path.name}: float input {med['float']:.2f} ms, uint8 input {med['uint8']:.2f} ms ({ratio:.3f}x); "
          f"argmax agreement {agree:.4%}, identical logits: {same_bits}")  # fmt: skip
    return {"model": str(path), "float_ms": med["float"], "uint8_ms": med["uint8"],
            "speedup": med["float"] / med["uint8"], "argmax_agreement": agree, "same_logits": same_bits}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    models = args.models or [Catalog.DEFAULT.value.path("onnx")]
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    img = synthetic_images([(320, 480)])[0]
    results = [measure(path, img, so, args.runs) for path in models]
    doc = {"cpu": cpu_model(), "flags": cpu_flags(), "threads": args.threads, "runs": args.runs, "rows": results}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
