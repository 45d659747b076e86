"""ModelMeta inside an ONNX file's metadata_props (so the runtime needs no side file)."""

from __future__ import annotations

from typing import Any

from fcnedge.meta import META_KEY, ModelMeta


def embed_meta(model: Any, meta: ModelMeta) -> None:
    """Write ``meta`` as schema-versioned JSON into ``model.metadata_props`` (replacing an older entry)."""
    props = [p for p in model.metadata_props if p.key != META_KEY]
    del model.metadata_props[:]
    for p in props:
        model.metadata_props.add(key=p.key, value=p.value)
    model.metadata_props.add(key=META_KEY, value=meta.to_json())


def read_meta_props(model: Any) -> ModelMeta | None:
    """The ModelMeta embedded in an onnx.ModelProto, or None when there is none."""
    for p in model.metadata_props:
        if p.key == META_KEY:
            return ModelMeta.from_json(p.value)
    return None
