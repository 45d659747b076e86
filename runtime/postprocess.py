"""Postprocessing: class ids from logits, fast.

numpy's ``argmax(axis=0)`` over (K, H, W) walks memory with a large stride; ONNX Runtime's ArgMax kernel is about
2.5x faster on this project's CPU (3.3 ms vs 8.3 ms for 11x320x480, 2 threads), so a tiny cached ArgMax session does
the work. Ties resolve to the first maximum, exactly like numpy. The edge install has no ``onnx`` package, so the
two-node graph (ArgMax over axis 0 -> Cast to uint8) ships serialised below; a test rebuilds it with onnx.helper
and checks the bytes.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

ARGMAX_MODEL = base64.b64decode(
    "CAgSB2ZjbmVkZ2U6mAEKNQoGbG9naXRzEgVpZHM2NCIGQXJnTWF4KgsKBGF4aXMYAKABAioPCghrZWVwZGltcxgAoAECCh0KBWlkczY0EgNpZHMi"
    "BENhc3QqCQoCdG8YAqABAhIGYXJnbWF4Wh8KBmxvZ2l0cxIVChMIARIPCgMSAUsKAxIBSAoDEgFXYhcKA2lkcxIQCg4IAhIKCgMSAUgKAxIBV0IE"
    "CgAQEQ=="
)

_SESSIONS: dict[int, Any] = {}
_LOCK = threading.Lock()


def _argmax_session(threads: int) -> Any:
    from fcnedge.runtime.session import inspection_session  # session imports upsample, which imports this

    with _LOCK:
        if threads not in _SESSIONS:
            # a second session's worker threads would spin between calls and steal cores from the model's own
            # session, which runs right after; without spinning they sleep as soon as the argmax is done
            _SESSIONS[threads] = inspection_session(ARGMAX_MODEL, threads=threads, spin=False)
        return _SESSIONS[threads]


def argmax_ids(logits: NDArray[np.float32], *, threads: int = 0) -> NDArray[np.uint8]:
    """(K, H, W) float32 logits -> (H, W) uint8 class ids (K <= 256), first maximum on ties."""
    if logits.dtype != np.float32 or logits.shape[0] > 256:
        out: NDArray[np.uint8] = logits.argmax(0).astype(np.uint8)
        return out
    ids: NDArray[np.uint8] = _argmax_session(threads).run(None, {"logits": np.ascontiguousarray(logits)})[0]
    return ids
