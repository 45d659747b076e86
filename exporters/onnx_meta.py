"""fcnedge's facts inside an ONNX file's metadata_props (so the runtime needs no side file): the ModelMeta, and
the names of the nodes that make up the upsampling (which int8 keeps in float)."""

from __future__ import annotations

import json
from typing import Any

from fcnedge.meta import META_KEY, ModelMeta

UPSAMPLING_KEY = "fcnedge.upsampling_nodes"


def set_prop(model: Any, key: str, value: str) -> None:
    """Write ``key`` into ``model.metadata_props``, replacing an older entry."""
    props = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    for p in props:
        model.metadata_props.add(key=p.key, value=p.value)
    model.metadata_props.add(key=key, value=value)


def get_prop(model: Any, key: str) -> str | None:
    """The value of ``key`` in ``model.metadata_props``, or None."""
    return next((p.value for p in model.metadata_props if p.key == key), None)


def embed_meta(model: Any, meta: ModelMeta) -> None:
    """Write ``meta`` as schema-versioned JSON into ``model.metadata_props`` (replacing an older entry)."""
    set_prop(model, META_KEY, meta.to_json())


def read_meta_props(model: Any) -> ModelMeta | None:
    """The ModelMeta embedded in an onnx.ModelProto, or None when there is none."""
    text = get_prop(model, META_KEY)
    return None if text is None else ModelMeta.from_json(text)


def embed_upsampling_nodes(model: Any, names: list[str]) -> None:
    """Record which nodes are the upsampling (as the rewrite reported creating them, or the kept ConvTransposes)."""
    set_prop(model, UPSAMPLING_KEY, json.dumps(names))


def read_upsampling_nodes(model: Any) -> list[str] | None:
    """The recorded upsampling node names, or None for a model exported without them."""
    text = get_prop(model, UPSAMPLING_KEY)
    return None if text is None else [str(n) for n in json.loads(text)]
