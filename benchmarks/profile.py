"""ONNX Runtime's profiler, summarised: which nodes (and op types) cost the time."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def profile_onnx(path: Path, shape: tuple[int, int], *, threads: int, runs: int = 10, top: int = 8) -> dict[str, Any]:
    """Run ``path`` ``runs`` times at batch 1 and ``shape`` with profiling on; returns per-op-type shares and the
    ``top`` most expensive nodes (mean microseconds per run)."""
    from fcnedge.runtime.session import inspection_session

    with tempfile.TemporaryDirectory() as tmp:
        sess = inspection_session(path, threads=threads, profile_prefix=str(Path(tmp) / "ort"))
        inp = sess.get_inputs()[0]
        name = inp.name
        # a --uint8-input model takes pixels: feed the mid-grey pixel, as the float input is fed its zero
        x = (
            np.full((1, 3, *shape), 127, dtype=np.uint8)
            if inp.type == "tensor(uint8)"
            else np.zeros((1, 3, *shape), dtype=np.float32)
        )
        for _ in range(runs):
            sess.run(None, {name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[tuple[str, str], float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            args = e.get("args", {})
            per_node[(e["name"][: -len("_kernel_time")], args.get("op_name", "?"))] += e["dur"]
    total = sum(per_node.values()) or 1.0
    per_op: dict[str, float] = defaultdict(float)
    for (_, op), us in per_node.items():
        per_op[op] += us
    nodes = sorted(per_node.items(), key=lambda kv: -kv[1])[:top]
    return {
        "runs": runs,
        "op_share": {op: round(us / total, 4) for op, us in sorted(per_op.items(), key=lambda kv: -kv[1])},
        "top_nodes": [
            {"node": n, "op": op, "us_per_run": round(us / runs, 1), "share": round(us / total, 4)}
            for (n, op), us in nodes
        ],
    }
