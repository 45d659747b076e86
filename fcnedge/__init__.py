"""fcnedge: FCN semantic segmentation from PyTorch to the edge.

The top level imports nothing heavy: ``fcnedge.models`` (torch) and ``fcnedge.runtime`` (onnxruntime) are
imported on use.
"""

from __future__ import annotations

from fcnedge._version import __version__
from fcnedge.errors import FcnEdgeError
from fcnedge.meta import ModelMeta
from fcnedge.specs import Blend, ExportSpec, Provider, ProviderSpec, Quantize, QuantSpec, TileSpec

__all__ = [
    "Blend",
    "ExportSpec",
    "FcnEdgeError",
    "ModelMeta",
    "Provider",
    "ProviderSpec",
    "QuantSpec",
    "Quantize",
    "TileSpec",
    "__version__",
]
