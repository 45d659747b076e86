"""Frozen option bundles and the string enums behind CLI choices."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TypeVar

from fcnedge.errors import ConfigError

E = TypeVar("E", bound=Enum)


class Quantize(str, Enum):
    """Weight/activation precision of an exported model."""

    NONE = "none"
    INT8 = "int8"
    FP16 = "fp16"


class CalibMethod(str, Enum):
    """Calibration method for static int8 quantisation."""

    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


class DataFormat(str, Enum):
    """On-disk dataset layouts fcnedge reads (``auto``: recognised from what is at the path; a dataset file,
    ``data.yaml``, is always recognised)."""

    AUTO = "auto"
    CAMVID = "camvid"
    VOC = "voc"
    FOLDER = "folder"  # images/ + masks/ (class-id PNGs)
    IMAGES = "images"  # a plain folder of images without labels (int8 calibration only)


class RewriteForm(str, Enum):
    """How the exporter writes the FCN's transposed-conv upsampling (every form is exact)."""

    AUTO = "auto"  # time the exact forms (and the untouched ConvTranspose), keep the fastest
    RESIZE = "resize"  # Pad -> Resize(linear) -> Slice; exact while the kernel is still bilinear
    DEPTHWISE = "depthwise"  # grouped 3x3 Conv -> DepthToSpace; exact when off-class filters are zero
    DENSE = "dense"  # 3x3 Conv -> DepthToSpace; always exact
    DENSE_DCR = "dense-dcr"  # dense with DepthToSpace in DCR order: the one form NNAPI and CoreML take whole
    CONVTRANSPOSE = "convtranspose"  # keep the ConvTranspose as exported


class Target(str, Enum):
    """What ``fcnedge export/convert --target`` writes."""

    ONNX = "onnx"  # one dynamic-shape .onnx file (the default)
    OPENVINO = "openvino"  # a folder: OpenVINO IR (model.xml/.bin) + target.json
    ORT_MOBILE = "ort-mobile"  # a folder: fixed-shape model.onnx + model.ort + operator config + target.json
    TENSORRT = "tensorrt"  # a folder: TensorRT engine cache built through ORT's TensorRT EP (a CUDA machine only)


class Engine(str, Enum):
    """Where ``fcnedge predict`` runs."""

    LOCAL = "local"  # this process
    RAY = "ray"  # a Ray cluster (Ray Data actors), local or remote


class Variant(str, Enum):
    """What ``fcnedge bench`` times."""

    TORCH = "torch"
    TORCH_COMPILE = "torch-compile"
    FP32 = "fp32"
    INT8 = "int8"
    FP16 = "fp16"
    OPENVINO = "openvino"  # plain OpenVINO on the fp32 file, f32 (what a user writes without fcnedge)
    OPENVINO_INT8 = "openvino-int8"  # plain OpenVINO on the same int8 QDQ file as the int8 row
    OPENVINO_BF16 = "openvino-bf16"  # plain OpenVINO on the fp32 file, bf16 (CPUs with AVX512-BF16 or AMX)
    ONNX = "onnx"  # a given .onnx file, timed as it is


class Blend(str, Enum):
    """How overlapping tile logits are combined."""

    MEAN = "mean"  # the seed's rule: plain average where tiles overlap
    HANN = "hann"  # smooth window, heavier weight at tile centres


def as_enum(enum: type[E], value: E | str, *, what: str) -> E:
    """``value`` as a member of ``enum``, for specs built from Python with plain strings.

    Raises:
        ConfigError: not one of the enum's values; the message lists them.
    """
    if isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        valid = ", ".join(str(m.value) for m in enum)  # type: ignore[attr-defined]
        raise ConfigError(f"{what} {value!r} is invalid: choose one of {valid}") from None


class Provider(str, Enum):
    """Short names for ONNX Runtime execution providers."""

    CPU = "cpu"
    CUDA = "cuda"
    TENSORRT = "tensorrt"
    OPENVINO = "openvino"
    COREML = "coreml"
    DML = "dml"


@dataclass(frozen=True)
class TileSpec:
    """How a large image is cut into tiles.

    Attributes:
        size: (height, width) of a tile; each a positive multiple of the model stride.
        overlap: fraction of a tile shared with its neighbour, in [0, 1).
        blend: how overlapping logits are combined.
        batch: how many tiles one session call runs (when the model's batch axis is dynamic).
        flip: test-time augmentation: each tile also runs mirrored left-right and the two logit maps are
            averaged (twice the inference; off by default).
    """

    size: tuple[int, int] = (320, 480)
    overlap: float = 0.25
    blend: Blend = Blend.MEAN
    batch: int = 4
    flip: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "blend", as_enum(Blend, self.blend, what="blend"))
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))

    def validate(self, stride: int) -> None:
        """Check the spec against a model stride.

        Raises:
            ConfigError: a side is not a positive multiple of ``stride``, overlap is outside [0, 1),
                or batch < 1.
        """
        h, w = self.size
        if h <= 0 or w <= 0 or h % stride or w % stride:
            raise ConfigError(
                f"tile size {h}x{w} is invalid: each side must be a positive multiple of the model stride "
                f"{stride} (e.g. {max(stride, h // stride * stride)}x{max(stride, w // stride * stride)})"
            )
        if not 0.0 <= self.overlap < 1.0:
            raise ConfigError(f"overlap {self.overlap} is invalid: use a value in [0, 1), e.g. 0.25")
        if self.batch < 1:
            raise ConfigError(f"tile batch {self.batch} is invalid: use 1 or more")


@dataclass(frozen=True)
class ProviderSpec:
    """Which execution providers to use, in order of preference.

    Attributes:
        providers: ordered provider names; the first available one runs the model.
        allow_fallback: when a requested provider is missing, warn and continue instead of raising.
        threads: intra-op threads for the CPU provider (0 lets ONNX Runtime choose).
        device_id: GPU index for cuda/tensorrt/dml.
        trt_cache: folder for TensorRT engine caches.
        openvino_device: OpenVINO device type (CPU, GPU, NPU, ...).
        openvino_precision: ``f32`` (default) or ``bf16`` (CPUs with AVX512-BF16 or AMX) for the OpenVINO engine.
    """

    providers: tuple[Provider, ...] = (Provider.CPU,)
    allow_fallback: bool = False
    threads: int = 0
    device_id: int = 0
    trt_cache: Path | None = None
    openvino_device: str = "CPU"
    openvino_precision: str = "f32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "providers", tuple(as_enum(Provider, p, what="provider") for p in self.providers))
        if not self.providers:
            raise ConfigError("no provider given: pass e.g. --provider cpu")
        if self.openvino_precision not in ("f32", "bf16"):
            raise ConfigError(f"OpenVINO precision {self.openvino_precision!r} is unknown: use f32 or bf16")
        check_threads(self.threads)


def max_threads() -> int:
    """The largest --threads fcnedge accepts: four per core of this machine."""
    import os

    return 4 * (os.cpu_count() or 1)


def check_threads(threads: int) -> None:
    """Raise unless ``threads`` is 0 (the runtime's default) or 1..4 x cores.

    Raises:
        ConfigError: out of range.
    """
    top = max_threads()
    if not isinstance(threads, int) or isinstance(threads, bool) or not 0 <= threads <= top:
        raise ConfigError(f"--threads {threads} is invalid: use 0 (the runtime's default) or 1..{top} (4 per core)")


@dataclass(frozen=True)
class ExportSpec:
    """Everything ``fcnedge export`` needs to turn a torch model into ONNX.

    Attributes:
        output: path of the .onnx file to write.
        opset: ONNX opset version.
        simplify: run onnxsim (then onnxslim as a fallback).
        rewrite: replace the transposed-conv upsampling with its fastest exact equivalent.
        rewrite_form: ``auto`` (time the exact forms, keep the fastest), ``resize``/``depthwise``/``dense``
            (used wherever it is exact) or ``convtranspose`` (keep the exported ConvTranspose).
        quantize: precision of the written model.
        export_shape: (height, width) used to trace the model.
        verify: compare torch and ONNX Runtime outputs after export.
        force: replace an existing output.
        dynamo: use the dynamo-based torch exporter instead of the TorchScript one.
        runtime_upsampling: end the graph at the stride-s logits of a frozen bilinear final upsampling; the runtime
            interpolates them (exactly, with OpenCV) instead of the model.
        ids_output: add a second output, uint8 class ids (ArgMax in the graph), which the runtime uses for images
            that fit one tile.
        uint8_input: the model takes uint8 RGB pixels and normalises them itself (int8 models with one affine
            normalisation for all channels lose their input QuantizeLinear too).
    """

    output: Path
    opset: int = 17
    simplify: bool = True
    rewrite: bool = True
    rewrite_form: RewriteForm = RewriteForm.AUTO
    quantize: Quantize = Quantize.NONE
    export_shape: tuple[int, int] = (320, 480)
    verify: bool = True
    force: bool = False
    dynamo: bool = False
    quant: QuantSpec | None = None
    runtime_upsampling: bool = False
    ids_output: bool = False
    uint8_input: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "rewrite_form", as_enum(RewriteForm, self.rewrite_form, what="rewrite form"))
        object.__setattr__(self, "quantize", as_enum(Quantize, self.quantize, what="quantize"))
        object.__setattr__(self, "output", Path(self.output))
        if self.runtime_upsampling and self.ids_output:
            raise ConfigError(
                "--ids-output and --runtime-upsampling exclude each other: the ids need the full-resolution logits "
                "in the graph; pick one"
            )


@dataclass(frozen=True)
class QuantSpec:
    """Static int8 quantisation options.

    Attributes:
        calib_data: dataset folder with calibration images.
        calib_format: its layout.
        calib_count: how many images to calibrate on.
        method: calibration method.
        per_channel: per-channel weight scales (per-tensor otherwise).
        calib_shape: (height, width) of the tiles calibration images are cut into when the model's meta names no
            tile (they are fed as the tiled predictor runs them: at the meta's inference scale, in its tiles).
        keep_upsampling_float: leave the final upsampling in float.
        reduce_range: 7-bit weights for CPUs whose int8 kernels saturate (x86 without VNNI); None decides from
            the host's CPU flags, and the decision is recorded in the export report.
        float_nodes: more nodes to keep in float (accuracy control returns the worst layers to float this way).
        weight_type: ``int8`` (symmetric, ONNX Runtime's u8s8 kernels) or ``uint8`` (asymmetric, its u8u8 kernels).
    """

    calib_data: Path | None = None
    calib_format: DataFormat = DataFormat.AUTO
    calib_count: int = 32
    method: CalibMethod = CalibMethod.MINMAX
    per_channel: bool = True
    calib_shape: tuple[int, int] = (320, 480)
    keep_upsampling_float: bool = True
    reduce_range: bool | None = None
    float_nodes: tuple[str, ...] = ()
    weight_type: str = "int8"

    def __post_init__(self) -> None:
        object.__setattr__(self, "calib_format", as_enum(DataFormat, self.calib_format, what="calibration format"))
        object.__setattr__(self, "method", as_enum(CalibMethod, self.method, what="calibration method"))
        if self.weight_type not in ("int8", "uint8"):
            raise ConfigError(f"--weight-type {self.weight_type!r} is invalid: choose int8 or uint8")


def parse_hw(text: str, *, what: str = "size") -> tuple[int, int]:
    """Parse ``"320x480"`` into ``(320, 480)``.

    Raises:
        ConfigError: the text is not two positive integers joined by ``x``.
    """
    parts = text.lower().replace("*", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is invalid: write HEIGHTxWIDTH, e.g. 320x480") from None
    if h <= 0 or w <= 0:
        raise ConfigError(f"{what} {text!r} is invalid: both sides must be positive, e.g. 320x480")
    return h, w
