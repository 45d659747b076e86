"""int8 (static QDQ, calibrated on real images) and fp16 conversion of an fp32 ONNX model.

Signedness: activations uint8 (asymmetric; FCN activations after ReLU/ReLU6 are non-negative, so uint8 spends
its whole range on them), weights int8 (symmetric, per channel). This U8S8 QDQ form is the one ONNX Runtime's
x86 int8 kernels are fastest on (VNNI/AMX; on an AVX512-VNNI Xeon S8S8 gave no speedup over fp32). On x86 CPUs
without VNNI the U8S8 products saturate, so ``reduce_range`` is decided from the host's CPU flags (or by the
user) and the decision is recorded in the report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.data.datasets import open_dataset, read_image_file
from fcnedge.errors import ConfigError, DatasetError, ExportError, OutputError
from fcnedge.exporters.onnx_meta import read_upsampling_nodes
from fcnedge.fsutil import TMP_MARK, temp_dir
from fcnedge.host import int8_reduce_range, is_x86
from fcnedge.meta import ModelMeta
from fcnedge.specs import CalibMethod, DataFormat, QuantSpec

log = logging.getLogger(__name__)


def calibration_images(spec: QuantSpec) -> list[NDArray[np.uint8]]:
    """Up to ``spec.calib_count`` RGB images from the calibration data, evenly spread over it.

    ``spec.calib_format`` says what the folder is: a data set (its train split's images are used) or ``images``,
    a plain folder of images (searched recursively). Nothing is guessed.

    Raises:
        DatasetError: the folder is missing, unreadable, not the layout named, or holds no images.
        ConfigError: no folder given, or calib_count < 1.
    """
    if spec.calib_data is None:
        raise ConfigError("int8 quantisation needs calibration images: pass --calib-data DIR")
    if spec.calib_count < 1:
        raise ConfigError(f"--calib-count {spec.calib_count} is invalid: use 1 or more (32 is a good default)")
    paths = _calibration_paths(Path(spec.calib_data), spec.calib_format)
    idx = np.linspace(0, len(paths) - 1, num=min(spec.calib_count, len(paths))).round().astype(int)
    return [read_image_file(paths[i]) for i in sorted(set(idx.tolist()))]


def _calibration_paths(root: Path, fmt: DataFormat) -> list[Path]:
    from fcnedge.data.datafile import DATAFILE_SUFFIXES
    from fcnedge.data.datasets import IMAGE_EXTS, detect_format

    if root.is_file() and root.suffix.lower() in DATAFILE_SUFFIXES:  # a dataset file: its train images
        return [img for img, _ in open_dataset(root, fmt, "train").pairs]
    if not root.is_dir():
        raise DatasetError(f"calibration folder {root} does not exist: pass a folder of images to --calib-data")
    if fmt is DataFormat.AUTO:  # recognised, never guessed: a labelled layout's train images, else the folder's
        try:
            fmt = detect_format(root)
        except DatasetError:
            fmt = DataFormat.IMAGES
        log.info("calibration data %s recognised as %s", root, fmt.value)
    if fmt is not DataFormat.IMAGES:
        try:
            return [img for img, _ in open_dataset(root, fmt, "train").pairs]
        except DatasetError as exc:
            raise DatasetError(
                f"{exc} (--calib-format {fmt.value}; for a plain folder of images pass --calib-format images)"
            ) from None
    try:
        plain = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    except OSError as exc:
        raise DatasetError(f"calibration folder {root} cannot be read ({exc.strerror}): check permissions") from None
    if not plain:
        raise DatasetError(f"calibration folder {root} holds no images: pass a folder with .png/.jpg images")
    return plain


def graph_fixed_hw(model: Any) -> tuple[int, int] | None:
    """The (H, W) a model's graph input fixes, or None when either is dynamic."""
    dims = model.graph.input[0].type.tensor_type.shape.dim[2:4]
    sizes = tuple(d.dim_value if d.HasField("dim_value") else 0 for d in dims)
    return (sizes[0], sizes[1]) if len(sizes) == 2 and all(sizes) else None


def calibration_inputs(
    images: list[NDArray[np.uint8]],
    meta: ModelMeta,
    shape: tuple[int, int],
    *,
    fixed_hw: tuple[int, int] | None = None,
) -> Iterator[NDArray[np.float32]]:
    """The (1, 3, th, tw) inputs the tiled predictor feeds the model for ``images``, one tile at a time: each image
    resized by the meta's inference scale (bilinear), cut into the meta's tiles (``shape`` when the meta has none),
    normalised, partial tiles padded as the predictor pads them. Calibration and accuracy control then see the
    activations users' runs produce, not centre crops at scale 1 (for a model run at 1.25 those miss the scale and
    the padded margin of every tile). A fixed-size model (``fixed_hw``) gets its only size, as the predictor
    feeds it (a smaller image padded up).

    Raises:
        ConfigError: the tile is not a multiple of the model stride (checked here, before any image is read).
    """
    from fcnedge.runtime.open import predictor_for
    from fcnedge.specs import TileSpec

    tiles: list[NDArray[np.float32]] = []

    def capture(buf: NDArray[np.float32]) -> NDArray[np.float32]:
        tiles.extend(np.array(b[None]) for b in buf)  # copies: the predictor reuses its buffer
        return np.zeros((len(buf), meta.num_classes, *buf.shape[2:]), dtype=np.float32)

    try:  # the predictor checks its tile against the stride; built here, before any image is read
        size = fixed_hw or meta.tile or shape
        predictor = predictor_for(capture, meta, TileSpec(size=size, batch=1), fixed_hw=fixed_hw, tile_explicit=False)
    except ConfigError as exc:
        raise ConfigError(f"calibration shape: {exc}; pass --shape with multiples of {meta.stride}") from None

    def inputs() -> Iterator[NDArray[np.float32]]:
        for img in images:
            predictor.logits(img)
            yield from tiles
            tiles.clear()

    return inputs()


def _work_files_error(exc: OSError, out_path: Path) -> OutputError:
    """A write failure while quantising (the work files live beside the output), as one line with the fix."""
    reason = exc.strerror or type(exc).__name__
    folder = out_path.parent
    while TMP_MARK in folder.name:  # the pipeline's work folder inside the output folder: name the latter
        folder = folder.parent
    return OutputError(
        f"could not write the int8 model or its work files in {folder} ({reason}): free space or choose another "
        "-o folder"
    )


class ImageReader:
    """ONNX Runtime CalibrationDataReader over real images, fed as the tiled predictor feeds them."""

    def __init__(
        self,
        images: list[NDArray[np.uint8]],
        meta: ModelMeta,
        shape: tuple[int, int],
        input_name: str,
        *,
        fixed_hw: tuple[int, int] | None = None,
    ):
        self.images, self.meta, self.shape, self.input_name = images, meta, shape, input_name
        self.fixed_hw = fixed_hw
        self._it = calibration_inputs(images, meta, shape, fixed_hw=fixed_hw)

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        x = next(self._it, None)
        return None if x is None else {self.input_name: x}

    def rewind(self) -> None:
        self._it = calibration_inputs(self.images, self.meta, self.shape, fixed_hw=self.fixed_hw)


def upsampling_nodes(model: Any) -> list[str]:
    """The nodes that make up the upsampling, as the exporter recorded them in the model.

    Raises:
        ExportError: the model carries no record (exported by an older fcnedge), or a recorded node is missing
            from the graph (so it could not be kept in float).
    """
    names = read_upsampling_nodes(model)
    if names is None:
        raise ExportError(
            "the model does not record its upsampling nodes (exported by an older fcnedge): re-export it with "
            "fcnedge export, or pass --quantize-upsampling to quantise them too"
        )
    present = {n.name for n in model.graph.node}
    missing = [n for n in names if n not in present]
    if missing:
        raise ExportError(
            f"upsampling nodes {missing[:3]} are not in the graph to quantise: re-export the model with fcnedge "
            "export, or pass --quantize-upsampling"
        )
    return names


U8_WEIGHTS_X86 = (
    "uint8 weights: ONNX Runtime runs u8u8 convolutions on a slow path on x86 (measured 29x slower than int8 weights "
    "on an AVX2 EPYC: 485 vs 16.7 ms); use --weight-type int8 unless you measured otherwise on your CPU"
)


def _reduce_range(spec: QuantSpec) -> tuple[bool, str]:
    if spec.reduce_range is not None:
        return spec.reduce_range, "set by the user"
    value, reason = int8_reduce_range()
    if value:
        log.warning("int8: %s", reason)
    return value, reason


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    meta: ModelMeta,
    spec: QuantSpec,
    images: list[NDArray[np.uint8]],
) -> dict[str, Any]:
    """Static QDQ int8 quantisation of ``fp32_path`` into ``out_path``; returns facts for the report.

    Raises:
        ExportError: ONNX Runtime's quantisation tools failed.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    method = {
        CalibMethod.MINMAX: CalibrationMethod.MinMax,
        CalibMethod.ENTROPY: CalibrationMethod.Entropy,
        CalibMethod.PERCENTILE: CalibrationMethod.Percentile,
    }[spec.method]
    preprocess_failure = None
    with temp_dir(out_path.parent, "int8") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            # ONNX shape inference is enough for conv nets; ORT's symbolic pass fails on DepthToSpace with symbolic
            # H/W and, when it fails, leaves a stray <uuid>.data file in the working directory
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        except OSError as exc:  # the disk, not the model: no point quantising without pre-processing
            raise _work_files_error(exc, out_path) from None
        except Exception as exc:
            preprocess_failure = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("int8 pre-processing failed (%s): quantising the unprocessed model", preprocess_failure)
            pre = fp32_path
        model = onnx.load(str(pre))
        exclude = (upsampling_nodes(model) if spec.keep_upsampling_float else []) + list(spec.float_nodes)
        reduce_range, why = _reduce_range(spec)
        input_name = model.graph.input[0].name
        reader = ImageReader(images, meta, spec.calib_shape, input_name, fixed_hw=graph_fixed_hw(model))
        try:
            quantize_static(
                str(pre),
                str(out_path),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=spec.per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QUInt8 if spec.weight_type == "uint8" else QuantType.QInt8,
                calibrate_method=method,
                nodes_to_exclude=exclude,
                reduce_range=reduce_range,
                extra_options={"CalibMovingAverage": False},
            )
        except OSError as exc:
            raise _work_files_error(exc, out_path) from None
        except Exception as exc:
            raise ExportError(f"int8 quantisation failed ({type(exc).__name__}: {str(exc)[:300]})") from exc
    warnings = []
    if preprocess_failure:
        warnings.append(f"pre-processing failed ({preprocess_failure}); quantised the unprocessed model")
    if spec.weight_type == "uint8" and is_x86():
        warnings.append(U8_WEIGHTS_X86)
        log.warning("int8: %s", U8_WEIGHTS_X86)
    return {
        "calibration_images": len(images),
        "method": spec.method.value,
        "per_channel": spec.per_channel,
        "activations": "uint8",
        "weights": spec.weight_type,
        "format": "QDQ",
        "excluded_nodes": exclude,
        "reduce_range": reduce_range,
        "reduce_range_reason": why,
        **({"warnings": warnings} if warnings else {}),
    }


def convert_fp16(model: Any) -> Any:
    """fp16 weights and compute with float32 inputs/outputs (``keep_io_types``), for GPU providers.

    Raises:
        ExportError: the converter failed.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        converted = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    except Exception as exc:
        raise ExportError(f"fp16 conversion failed ({type(exc).__name__}: {str(exc)[:300]})") from exc
    toposort(converted.graph)  # the converter appends its input Casts at the end
    return converted


def toposort(graph: Any) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs (stable otherwise)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[Any] = []
    while pending:
        progressed = False
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
                progressed = True
            else:
                rest.append(n)
        if not progressed:
            raise ExportError("fp16 graph has a cycle or a dangling input: report this model to fcnedge")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)
