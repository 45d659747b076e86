"""The edge side: ONNX Runtime sessions, providers, preprocessing, tiling, predictors. Never imports torch.

``open_predictor`` is the one way to open a model; everything else here is its parts.
"""

from __future__ import annotations

from fcnedge.normalize import Normalizer
from fcnedge.protocols import Predictor, Runner
from fcnedge.runtime.open import open_predictor, predictor_for
from fcnedge.runtime.predictor import TiledPredictor, softmax
from fcnedge.runtime.preprocess import read_image
from fcnedge.runtime.session import Session, read_onnx_meta

__all__ = [
    "Normalizer",
    "Predictor",
    "Runner",
    "Session",
    "TiledPredictor",
    "open_predictor",
    "predictor_for",
    "read_image",
    "read_onnx_meta",
    "softmax",
]
