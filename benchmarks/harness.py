"""``fcnedge bench``: every variant timed on identical inputs in one run, with accuracy side by side."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.benchmarks.derived import add_ratios, add_roofline
from fcnedge.benchmarks.machine import current_rss_mb, machine_facts, peak_rss_mb, reset_peak_rss
from fcnedge.benchmarks.rows import BenchReport, BenchRow
from fcnedge.benchmarks.timing import StageTimer, time_interleaved
from fcnedge.benchmarks.variants import (
    ONNX_VARIANTS,
    OPENVINO_VARIANTS,
    TORCH_VARIANTS,
    Built,
    Source,
    build_onnx,
    build_openvino,
    build_ort,
    build_torch,
    openvino_bf16_available,
)
from fcnedge.errors import ConfigError
from fcnedge.meta import ModelMeta, Upsampling, check_scale
from fcnedge.normalize import Normalizer
from fcnedge.runtime.predictor import STAGES, scaled_input
from fcnedge.specs import DataFormat, Provider, ProviderSpec, QuantSpec, TileSpec, Variant, as_enum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    """Options of ``fcnedge bench``."""

    variants: tuple[Variant, ...] = (Variant.TORCH, Variant.FP32, Variant.INT8)
    providers: ProviderSpec = field(default_factory=ProviderSpec)
    shapes: tuple[tuple[int, int], ...] = ((320, 480),)
    batch: int = 1
    threads: int = 2
    warmup: int = 5
    runs: int = 30
    data: Path | None = None
    data_format: DataFormat = DataFormat.AUTO
    split: str = "val"
    eval_limit: int | None = None
    calib: QuantSpec | None = None
    opset: int = 17
    out: Path = Path("bench")
    roofline: bool = True
    profile: bool = False
    runtime_upsampling: bool = True  # fcnedge's own ONNX rows: the final bilinear upsampling in the runtime
    shipped_int8: bool = True  # a bundled model's int8 rows time its shipped (gated) file unless calib is explicit
    scale: float | None = None  # inference scale; None: each model's own (its meta's)

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", tuple(as_enum(Variant, v, what="variant") for v in self.variants))
        object.__setattr__(self, "data_format", as_enum(DataFormat, self.data_format, what="--format"))
        for name in ("runs", "batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} {getattr(self, name)} is invalid: use 1 or more")
        if self.warmup < 0:
            raise ConfigError(f"--warmup {self.warmup} is invalid: use 0 or more")
        if Variant.OPENVINO_BF16 in self.variants and not openvino_bf16_available():
            raise ConfigError(
                "openvino-bf16 needs a CPU with AVX512-BF16 or AMX (and OpenVINO installed), which this machine "
                "lacks: drop it from --variants"
            )
        check_scale(self.scale)
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ConfigError(f"--eval-limit {self.eval_limit} is invalid: use 1 or more (omit it for all images)")

    def tile(self, shape: tuple[int, int]) -> TileSpec:
        """The tile every variant's predictor uses: the model input for the benchmark shape, the bench's batch, no
        overlap (``--batch N`` times N frames side by side as N tiles: :func:`batch_image`)."""
        return TileSpec(size=shape, overlap=0.0, batch=self.batch)


def torch_source(label: str, model: Any, meta: ModelMeta, digest: str, shipped_int8: Path | None = None) -> Source:
    """A Source for a torch model."""
    return Source(label=label, torch_model=model, meta=meta, digest=digest, shipped_int8=shipped_int8)


def file_digest(path: Path) -> str:
    """Short sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def bench_input(cfg: BenchConfig, shape: tuple[int, int]) -> NDArray[np.uint8]:
    """The one uint8 RGB image every variant sees: a real val image when --data is given, else a seeded synthetic."""
    from fcnedge.data.synthetic import synthetic_images
    from fcnedge.data.transforms import center_crop

    if cfg.data is not None:
        from fcnedge.data.datasets import open_dataset, read_image_file

        ds = open_dataset(cfg.data, cfg.data_format, cfg.split)
        return np.ascontiguousarray(center_crop(read_image_file(ds.pairs[0][0]), *shape))
    return synthetic_images([shape])[0]


def source_scale(src: Source, cfg: BenchConfig) -> float:
    """The inference scale a source is benchmarked at: --scale, else its meta's, else 1."""
    if cfg.scale is not None:
        return cfg.scale
    return src.meta.scale if src.meta is not None else 1.0


def model_input(shape: tuple[int, int], scale: float, stride: int) -> tuple[int, int]:
    """What the model takes for an image of ``shape`` at ``scale``: the scaled image padded to the stride (at scale
    1, the image padded: a 360x480 frame runs as one 384x480 tile, as predict runs it)."""
    return scaled_input(*shape, scale, stride)


def source_input(src: Source, cfg: BenchConfig, shape: tuple[int, int]) -> tuple[int, int]:
    """The model input a source's variants take for images of ``shape`` (:func:`model_input` at its scale)."""
    return model_input(shape, source_scale(src, cfg), src.meta.stride if src.meta is not None else 32)


def _build(src: Source, variant: Variant, cfg: BenchConfig, shape: tuple[int, int]) -> Built:
    """Build one variant for model inputs of ``shape`` (the scaled, padded image)."""
    cuda = Provider.CUDA in cfg.providers.providers
    tile = cfg.tile(shape)
    if src.onnx_path is not None:
        return build_ort(src.onnx_path, variant, cfg.providers, tile, scale=cfg.scale)
    if variant in TORCH_VARIANTS:
        return build_torch(src, variant, tile=tile, threads=cfg.threads, cuda=cuda, scale=cfg.scale)
    cache = cfg.out / "cache"
    if variant in OPENVINO_VARIANTS:
        int8 = variant is Variant.OPENVINO_INT8
        path, warnings = build_onnx(
            src,
            Variant.INT8 if int8 else Variant.FP32,
            cache=cache,
            opset=cfg.opset,
            shape=shape,
            quant=cfg.calib if int8 else None,
            threads=cfg.threads,
            prefer_shipped=cfg.shipped_int8,
        )
        ov = build_openvino(
            path,
            src.meta,  # type: ignore[arg-type]
            variant=variant,
            threads=cfg.threads,
            tile=tile,
            batch=cfg.batch,
            scale=cfg.scale,
        )
        ov.warnings = warnings
        return ov
    movable = src.meta is not None and src.meta.upsampling is Upsampling.FROZEN
    runtime_up = cfg.runtime_upsampling and movable
    path, warnings = build_onnx(
        src,
        variant,
        cache=cache,
        opset=cfg.opset,
        shape=shape,
        quant=cfg.calib,
        threads=cfg.threads,
        runtime_upsampling=runtime_up,
        prefer_shipped=cfg.shipped_int8,
        fast_shipped=True,
    )
    built = build_ort(path, variant, cfg.providers, tile, scale=cfg.scale)
    built.warnings = warnings
    if path.parent == cache / f"{src.label}-shipped":
        built.note = (
            "the shipped int8 file in fcnedge's exact fast form (fcnedge convert; the forms applied are in warnings)"
        )
    elif path.parent == cache and cfg.runtime_upsampling:  # an export made for this row (not the shipped file)
        built.note = (
            "final upsampling in the runtime (--runtime-upsampling)"
            if runtime_up
            else "final upsampling in the graph: it is trained, so it cannot move to the runtime"
        )
    return built


class PredictTimer(StageTimer):
    """Times ``predict`` as users call it, through the seam (:meth:`TiledPredictor.predict_timed`): the whole call
    and its stages (preprocess, inference, postprocess), no copy of the predictor's code."""

    def __init__(self, b: Built, image: NDArray[np.uint8]) -> None:
        super().__init__([(name, lambda x: x) for name in STAGES], image, b.sync)
        self.predictor = b.predictor

    def run(self, *, record: bool) -> None:
        t0 = time.perf_counter()
        _, stages = self.predictor.predict_timed(self.first_input)
        if self.sync is not None:
            self.sync()
        if record:
            self.totals.append(time.perf_counter() - t0)
            for name, seconds in stages.items():
                self.per[name].append(seconds)


def batch_image(image: NDArray[np.uint8], batch: int) -> NDArray[np.uint8]:
    """What one ``predict`` call takes for ``--batch N``: N copies of the image side by side, so that one engine
    call holds N tiles (as predict runs a wide image; the bench's tiles do not overlap)."""
    return image if batch == 1 else np.ascontiguousarray(np.concatenate([image] * batch, axis=1))


def stage_timer(b: Built, image: NDArray[np.uint8], cfg: BenchConfig) -> StageTimer:
    """``predict`` on the bench image (``cfg.batch`` copies side by side), through the seam, per stage."""
    return PredictTimer(b, batch_image(image, cfg.batch))


def add_latency(row: BenchRow, timer: StageTimer, cfg: BenchConfig) -> None:
    """A finished timer's figures into its row."""
    total, per = timer.stats()
    row.latency, row.stages = total, per
    row.throughput = cfg.batch * 1e3 / total.mean
    row.runs = total.runs


def add_accuracy(row: BenchRow, b: Built, cfg: BenchConfig) -> None:
    """mIoU etc. on --data with the same metric code as fcnedge eval."""
    from fcnedge.data.datasets import open_dataset
    from fcnedge.evaluation import evaluate_predictor

    assert cfg.data is not None
    ds = open_dataset(cfg.data, cfg.data_format, cfg.split, num_classes=b.meta.num_classes)
    s = evaluate_predictor(b.predictor, ds, limit=cfg.eval_limit)
    row.miou, row.pixel_accuracy = s["miou"], s["pixel_accuracy"]
    row.per_class_iou, row.eval_images = s["per_class_iou"], s["images"]


def add_fidelity(
    row: BenchRow, b: Built, ref: NDArray[np.float32], x: NDArray[np.float32], pixels: NDArray[np.uint8]
) -> None:
    """Argmax agreement and max abs logit difference against the PyTorch reference output (``x``: the normalised
    batch; ``pixels``: the same batch as uint8 planes, for models that take pixels)."""
    batch: Any = pixels if b.predictor.input_dtype == np.uint8 else x
    got = b.run(batch)
    row.argmax_agreement_vs_torch = float(np.mean(got.argmax(1) == ref.argmax(1)))
    row.max_abs_logit_diff_vs_torch = float(np.abs(got - ref).max())


def _reference(src: Source, x: NDArray[np.float32]) -> NDArray[np.float32] | None:
    if src.torch_model is None:
        return None
    from fcnedge.models.infer import torch_runner

    return torch_runner(src.torch_model)(x)  # type: ignore[no-any-return]


def build_one(
    src: Source, variant: Variant, cfg: BenchConfig, shape: tuple[int, int], mshape: tuple[int, int]
) -> tuple[BenchRow, Built]:
    """Build one variant (exporting it if needed) and start its report row; records the RSS it added. ``shape``:
    the image; ``mshape``: what the model takes (:func:`source_input`)."""
    rss_before = current_rss_mb()
    reset_peak_rss()
    t0 = time.perf_counter()
    b = _build(src, variant, cfg, mshape)
    row = BenchRow(
        model=src.label,
        variant=b.variant.value,
        provider=b.provider,
        shape=f"{shape[0]}x{shape[1]}",
        batch=cfg.batch,
        threads=cfg.threads,
        build_s=round(time.perf_counter() - t0, 2),
        rss_before_mb=rss_before,
        note=b.note or None,
        warnings=list(b.warnings),
    )
    if b.predictor.scale != 1.0:
        row.scale = b.predictor.scale
        row.model_input = f"{mshape[0]}x{mshape[1]}"
    if b.onnx_path is not None:
        row.onnx = str(b.onnx_path)
        row.file_mb = round(b.onnx_path.stat().st_size / 1e6, 2)
    return row, b


def score_one(row: BenchRow, b: Built, cfg: BenchConfig, mshape: tuple[int, int]) -> None:
    """Accuracy on --data and the optional profile (at the model input ``mshape``), after timing."""
    if cfg.data is not None:
        add_accuracy(row, b, cfg)
    if cfg.profile and b.onnx_path is not None and b.provider == "CPUExecutionProvider":
        from fcnedge.benchmarks.profile import profile_onnx

        row.profile = profile_onnx(b.onnx_path, mshape, threads=cfg.threads)


def run_bench(sources: list[Source], cfg: BenchConfig) -> BenchReport:
    """Run every source x variant x shape; returns the report (the CLI writes it).

    Raises:
        ConfigError: a variant that does not apply to a source.
        ProviderUnavailableError: see runtime.providers.
    """
    from fcnedge.runtime.open import check_providers

    check_providers(cfg.providers)  # fail before any work when a requested provider is missing
    rows: list[BenchRow] = []
    for shape in cfg.shapes:
        image = bench_input(cfg, shape)
        for src in sources:
            rows.extend(_bench_source(src, cfg, shape, image))
    add_ratios(rows)
    roof = add_roofline(rows, cfg)
    return BenchReport(machine=machine_facts(), config=_config_dict(cfg), rows=rows, roofline=roof)


def _bench_source(src: Source, cfg: BenchConfig, shape: tuple[int, int], image: NDArray[np.uint8]) -> list[BenchRow]:
    """All variants of one source, timed in interleaved blocks on the same input; then fidelity and accuracy."""
    variants = (Variant.ONNX,) if src.onnx_path is not None else cfg.variants
    for v in variants:
        if src.onnx_path is None and v not in (*TORCH_VARIANTS, *ONNX_VARIANTS, *OPENVINO_VARIANTS):
            raise ConfigError(f"variant {v.value!r} does not apply to {src.label}")
    mshape = source_input(src, cfg, shape)  # the same for every variant of the source
    rows: dict[Variant, BenchRow] = {}
    built: dict[Variant, Built] = {}
    timers: dict[Variant, StageTimer] = {}
    for v in variants:
        rows[v], built[v] = build_one(src, v, cfg, shape, mshape)
        timers[v] = stage_timer(built[v], image, cfg)
        timers[v].run(record=False)  # first run: compiles torch.compile, allocates arenas
        rows[v].peak_rss_mb = peak_rss_mb()
    time_interleaved(timers, warmup=cfg.warmup, runs=cfg.runs)
    for v in variants:
        add_latency(rows[v], timers[v], cfg)
        log.info("%s %s %s: p50 %.1f ms", src.label, v, built[v].provider, rows[v].p50)
    if src.meta is not None and src.torch_model is not None:
        # the model's input, for the parity check only: the image resized to it (a timed run pads instead)
        seen = image if mshape == shape else np.asarray(cv2.resize(image, mshape[::-1]), dtype=np.uint8)
        x = Normalizer(src.meta.mean, src.meta.std)(seen)[None].repeat(cfg.batch, axis=0)
        pixels = np.ascontiguousarray(seen.transpose(2, 0, 1))[None].repeat(cfg.batch, axis=0)
        ref = _reference(src, x)
        for v in variants:
            if v not in TORCH_VARIANTS and ref is not None:
                add_fidelity(rows[v], built[v], ref, x, pixels)
    for v in variants:
        score_one(rows[v], built[v], cfg, mshape)
    return [rows[v] for v in variants]


def _config_dict(cfg: BenchConfig) -> dict[str, Any]:
    return {
        "variants": [v.value for v in cfg.variants],
        "providers": [p.value for p in cfg.providers.providers],
        "shapes": [f"{h}x{w}" for h, w in cfg.shapes],
        "scale": cfg.scale if cfg.scale is not None else "each model's own",
        "batch": cfg.batch,
        "threads": cfg.threads,
        "warmup": cfg.warmup,
        "runs": cfg.runs,
        "data": str(cfg.data) if cfg.data else None,
        "split": cfg.split,
        "eval_limit": cfg.eval_limit,
    }
