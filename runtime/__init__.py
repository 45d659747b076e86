"""The edge side: ONNX Runtime sessions, providers, preprocessing, tiling, predictors. Never imports torch."""

from __future__ import annotations

from fcnedge.runtime.predictor import Predictor, TiledPredictor, softmax
from fcnedge.runtime.preprocess import read_image
from fcnedge.runtime.session import Session, read_onnx_meta

__all__ = ["Predictor", "Session", "TiledPredictor", "read_image", "read_onnx_meta", "softmax"]


def open_predictor(
    path: str,
    *,
    providers: str = "cpu",
    allow_fallback: bool = False,
    threads: int = 0,
    tile: tuple[int, int] | None = None,
    overlap: float = 0.25,
) -> TiledPredictor:
    """One-call helper: an ONNX model file -> a ready TiledPredictor.

    Raises:
        FcnEdgeError: see :class:`Session` and :class:`TiledPredictor`.
    """
    from pathlib import Path

    from fcnedge.runtime.predictor import fit_tile_to_model
    from fcnedge.runtime.providers import parse_providers
    from fcnedge.specs import ProviderSpec, TileSpec

    spec = ProviderSpec(providers=parse_providers(providers), allow_fallback=allow_fallback, threads=threads)
    ts = TileSpec(size=tile, overlap=overlap) if tile else TileSpec(overlap=overlap)
    session = Session(Path(path), spec, tile=ts.size)
    ts = fit_tile_to_model(ts, session.fixed_hw, explicit=tile is not None)
    return TiledPredictor(session.run, session.meta, ts, max_batch=session.max_batch)
