"""The contracts every layer shares (below both core and runtime): a Runner and a Predictor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from fcnedge.meta import ModelMeta

Runner = Callable[[NDArray[np.float32]], NDArray[np.float32]]
"""(N, 3, h, w) normalised float32 -> (N, K, h, w) float32 logits (an ORT session, a torch module, OpenVINO...)."""


class Predictor(Protocol):
    """What the CLI, benchmarks, evaluation and demo see."""

    meta: ModelMeta

    def logits(self, image: NDArray[np.uint8]) -> NDArray[np.float32]: ...  # HWC RGB -> (K, H, W)

    def predict(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]: ...  # -> (H, W) class ids
