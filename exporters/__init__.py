"""Torch -> ONNX: export, simplify, rewrite, verify, quantise. Importing the package registers the export of
checkpoints and architecture names for ``fcnedge.sources.onnx_path`` (so the runtime opens a ``.pt`` without
importing the exporters itself); nothing heavy is imported here."""

from __future__ import annotations

from fcnedge.exporters.torch_sources import export_cached
from fcnedge.sources import register_torch_export

register_torch_export(export_cached)
