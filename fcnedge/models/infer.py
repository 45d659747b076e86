"""Torch-side inference as a Runner, so torch models go through the runtime's own predictor (same tiling,
padding and stitching as ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from fcnedge.protocols import Runner


def torch_runner(model: nn.Module) -> Runner:
    """Wrap a torch module as a Runner: (N,3,h,w) float32 numpy -> (N,K,h,w) float32 numpy (thread-safe: no
    state outside the call)."""

    def run(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.no_grad():
            out: NDArray[np.float32] = model(torch.from_numpy(batch)).numpy()
        return out

    return run
