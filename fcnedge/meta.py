"""ModelMeta: what is true of a model whatever runs it, and its schema-versioned JSON form."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any

from fcnedge.errors import ConfigError, ModelMetaError

# 2: scale and tile (round 5); 1 files are read as they are (without them: scale 1, the default tile)
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
META_KEY = "fcnedge.meta"  # key in ONNX metadata_props and in checkpoints
RUNTIME_UPSAMPLING_KEY = "fcnedge.runtime_upsampling"  # the final upsampling runs in the runtime (JSON: stride)
IDS_OUTPUT = "ids"  # the optional second output: uint8 class ids from an ArgMax in the graph (--ids-output)

MIN_SCALE, MAX_SCALE = 0.25, 4.0  # inference scales a meta or --scale may give


def check_scale(
    scale: float | None, *, what: str = "--scale", error: type[ConfigError | ModelMetaError] = ConfigError
) -> None:
    """Refuse an inference scale outside [0.25, 4] (NaN and infinities included); None (the meta's) passes.

    Raises:
        ConfigError: (or ``error``: a meta's own check raises ModelMetaError) naming ``what`` and the valid range.
    """
    if scale is not None and not MIN_SCALE <= scale <= MAX_SCALE:
        raise error(f"{what} {scale} is invalid: give an inference scale in [{MIN_SCALE}, {MAX_SCALE}]")


class Upsampling(str, Enum):
    """How a model's final upsampling was made (a str: ``meta.upsampling == "frozen"`` holds, JSON writes the value)."""

    TRAINED = "trained"  # the transposed convs were trained
    FROZEN = "frozen"  # kept at bilinear: exact, so it can run in the runtime (--runtime-upsampling)
    NONE = "n/a"  # a model with its own segmentation head (no FCN upsampling)

    def __str__(self) -> str:
        return self.value


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (0.498, 0.498, 0.498)  # EfficientNet-Lite was trained on (x - 127) / 128
LITE_STD = (0.502, 0.502, 0.502)


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """The Pascal VOC colour map, extended as far as needed."""
    palette = []
    for i in range(num_classes):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.append((r, g, b))
    return palette


@dataclass(frozen=True)
class ModelMeta:
    """Description of a segmentation model.

    Attributes:
        arch: architecture name in the registry (e.g. ``fcn_resnet18``).
        backbone: feature extractor name.
        num_classes: K, the number of output channels.
        class_names: one name per class.
        palette: one RGB colour per class.
        mean: per-channel mean of RGB input scaled to [0, 1].
        std: per-channel std of RGB input scaled to [0, 1].
        stride: output stride of the features; input sides should be multiples of it.
        ignore_index: label id ignored in loss and metrics (``None`` if none).
        head: head variant (``32s``, ``16s``, ``8s``, ``4s``, ``2s``, ``2s-k3``, or a question head of
            fcnedge.models.fcn.HEADS).
        upsampling: ``trained`` or ``frozen`` bilinear transposed conv.
        input_format: pixel order the model expects (always RGB for fcnedge models).
        provenance: free-form facts: dataset, command, metrics, versions.
        scale: inference scale: an image is resized by it before the model runs and the logits are resized back
            (1.0: as given). A model trained with scale jitter may see thin objects better a little enlarged.
        tile: the tile (H, W, in model-input pixels, multiples of ``stride``) the predictor uses when none is
            given; ``None``: fcnedge's default (320x480).
    """

    arch: str
    backbone: str
    num_classes: int
    class_names: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    stride: int = 32
    ignore_index: int | None = 255
    head: str = "32s"
    upsampling: Upsampling = Upsampling.TRAINED
    input_format: str = "RGB"
    provenance: dict[str, Any] = field(default_factory=dict)
    scale: float = 1.0
    tile: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ModelMetaError(
                f"num_classes {self.num_classes} is invalid: a segmentation model needs at least 2 classes"
            )
        if not self.class_names:
            object.__setattr__(self, "class_names", tuple(f"class_{i}" for i in range(self.num_classes)))
        if not self.palette:
            object.__setattr__(self, "palette", tuple(default_palette(self.num_classes)))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "palette", tuple(tuple(int(v) for v in c) for c in self.palette))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "scale", float(self.scale))
        try:
            object.__setattr__(self, "upsampling", Upsampling(self.upsampling))
        except ValueError:
            ups = ", ".join(u.value for u in Upsampling)
            raise ModelMetaError(f"meta upsampling {self.upsampling!r} is unknown: it is one of {ups}") from None
        check_scale(self.scale, what="meta scale", error=ModelMetaError)
        if self.tile is not None:
            tile = tuple(int(v) for v in self.tile)
            if len(tile) != 2 or min(tile) < self.stride or any(v % self.stride for v in tile):
                raise ModelMetaError(
                    f"meta tile {list(self.tile)} is invalid: give [H, W], positive multiples of the stride "
                    f"{self.stride}"
                )
            object.__setattr__(self, "tile", tile)
        if len(self.class_names) != self.num_classes or len(self.palette) != self.num_classes:
            raise ModelMetaError(
                f"meta has {len(self.class_names)} class names and {len(self.palette)} colours for "
                f"{self.num_classes} classes: give one of each per class"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict carrying ``schema_version``."""
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["palette"] = [list(c) for c in self.palette]
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        d["tile"] = list(self.tile) if self.tile is not None else None
        d["upsampling"] = self.upsampling.value  # plain str: checkpoints load with weights_only
        return {"schema_version": SCHEMA_VERSION, **d}

    def to_json(self) -> str:
        """Serialise to a compact JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_provenance(self, **facts: Any) -> ModelMeta:
        """A copy with ``facts`` merged into provenance."""
        return replace(self, provenance={**self.provenance, **facts})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        """Build from :meth:`to_dict` output.

        Raises:
            ModelMetaError: unknown schema version, missing or invalid fields.
        """
        if not isinstance(data, dict):
            raise ModelMetaError("model meta is not a JSON object: re-export the model with fcnedge")
        version = data.get("schema_version")
        if version not in READABLE_SCHEMAS:
            raise ModelMetaError(
                f"model meta schema_version {version!r} is not supported (this fcnedge reads "
                f"{', '.join(map(str, READABLE_SCHEMAS))}): re-export the model with this fcnedge version"
            )
        fields = {k: v for k, v in data.items() if k != "schema_version"}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ModelMetaError(f"model meta has unknown fields {unknown}: re-export with this fcnedge")
        for required in ("arch", "backbone", "num_classes"):
            if required not in fields:
                raise ModelMetaError(f"model meta lacks {required!r}: re-export the model with fcnedge")
        try:
            return cls(**fields)
        except (TypeError, ValueError) as exc:
            raise ModelMetaError(f"model meta is invalid ({exc}): re-export the model with fcnedge") from None

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        """Parse :meth:`to_json` output.

        Raises:
            ModelMetaError: the text is not valid JSON or not a valid meta.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelMetaError(f"model meta is not valid JSON ({exc.msg}): re-export the model") from None
        return cls.from_dict(data)
