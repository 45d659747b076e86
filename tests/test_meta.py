from __future__ import annotations

import json

import pytest

from fcnedge.errors import ConfigError, ModelMetaError
from fcnedge.meta import ModelMeta, default_palette
from fcnedge.specs import TileSpec, parse_hw


def test_meta_json_round_trip() -> None:
    meta = ModelMeta(
        arch="fcn_resnet18",
        backbone="resnet18",
        num_classes=3,
        class_names=("a", "b", "c"),
        provenance={"dataset": "camvid"},
    )
    back = ModelMeta.from_json(meta.to_json())
    assert back == meta
    assert json.loads(meta.to_json())["schema_version"] == 2


def test_default_palette_is_voc() -> None:
    pal = default_palette(21)
    assert pal[0] == (0, 0, 0) and pal[1] == (128, 0, 0) and pal[15] == (192, 128, 128)


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"schema_version": 99, "arch": "x", "backbone": "y", "num_classes": 3}, "schema_version 99"),
        ({"schema_version": 1, "backbone": "y", "num_classes": 3}, "lacks 'arch'"),
        ({"schema_version": 1, "arch": "x", "backbone": "y", "num_classes": 1}, "at least 2"),
        ({"schema_version": 1, "arch": "x", "backbone": "y", "num_classes": 3, "foo": 1}, "unknown fields"),
    ],
)
def test_meta_errors(data: dict[str, object], msg: str) -> None:
    with pytest.raises(ModelMetaError, match=msg):
        ModelMeta.from_dict(data)
    with pytest.raises(ModelMetaError, match="not valid JSON"):
        ModelMeta.from_json("{nope")


def test_tile_spec_and_hw_parsing() -> None:
    assert parse_hw("320x480") == (320, 480)
    with pytest.raises(ConfigError, match="HEIGHTxWIDTH"):
        parse_hw("320by480")
    TileSpec((64, 96)).validate(32)
    with pytest.raises(ConfigError, match="multiple of the model stride 32"):
        TileSpec((70, 96)).validate(32)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        TileSpec((64, 96), overlap=1.0).validate(32)


def test_a_schema_1_meta_is_still_read() -> None:
    """Schema 2 added scale and tile; files written at 1 (before them, or by the fcnedge that added them without
    a bump, like the bundled model) are read as they are."""
    old = {"schema_version": 1, "arch": "x", "backbone": "y", "num_classes": 3}
    meta = ModelMeta.from_dict(old)
    assert meta.scale == 1.0 and meta.tile is None
    assert ModelMeta.from_dict({**old, "scale": 1.25, "tile": [480, 608]}).tile == (480, 608)
    assert json.loads(meta.to_json())["schema_version"] == 2


def test_result_documents_carry_their_schema_and_refuse_a_newer_one() -> None:
    from fcnedge.errors import ConfigError
    from fcnedge.results import SCHEMAS, check_schema, versioned

    doc = versioned("bench-report", {"rows": []})
    assert list(doc)[:2] == ["schema", "schema_version"] and doc["schema_version"] == SCHEMAS["bench-report"]
    assert check_schema(doc, "bench-report", "r.json") == {"rows": []}
    assert check_schema({"rows": []}, "bench-report", "old.json") == {"rows": []}  # written before schemas: v1
    with pytest.raises(ConfigError, match="upgrade fcnedge"):
        check_schema({**doc, "schema_version": 99}, "bench-report", "r.json")
    with pytest.raises(ConfigError, match="not a train-log"):
        check_schema(doc, "train-log", "r.json")


def test_upsampling_is_an_enum_that_reads_and_writes_its_old_strings() -> None:
    from fcnedge.meta import Upsampling

    m = ModelMeta(arch="a", backbone="b", num_classes=3, upsampling="frozen")
    assert m.upsampling is Upsampling.FROZEN and m.upsampling == "frozen"
    assert m.to_dict()["upsampling"] == "frozen" and type(m.to_dict()["upsampling"]) is str
    assert ModelMeta.from_json(m.to_json()) == m
    assert ModelMeta(arch="a", backbone="b", num_classes=3, upsampling="n/a").upsampling is Upsampling.NONE
    with pytest.raises(ModelMetaError, match="meta upsampling 'bicubic' is unknown"):
        ModelMeta(arch="a", backbone="b", num_classes=3, upsampling="bicubic")
