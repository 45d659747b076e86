"""The one seam that opens a model for running: resolve the MODEL argument, open the session with every runtime
option, fit the tile to the model, build the predictor. Every command and internal user goes through here.

Torch-free: a bundled model or an .onnx file never imports torch; a .pt checkpoint or an architecture name is
exported into the cache first, which needs ``fcnedge[torch]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from fcnedge.errors import ConfigError, ModelMetaError, ProviderUnavailableError
from fcnedge.meta import ModelMeta, check_scale
from fcnedge.protocols import Runner
from fcnedge.runtime.openvino_engine import INSTALL as OV_INSTALL
from fcnedge.runtime.openvino_engine import OpenVINOSession, is_ir, openvino_available
from fcnedge.runtime.predictor import TiledPredictor, fit_tile_to_model, scaled_input
from fcnedge.runtime.providers import parse_providers, resolve
from fcnedge.runtime.session import Session, read_onnx_meta
from fcnedge.runtime.tune import read_tuned
from fcnedge.sources import identify, is_ort_format, onnx_path
from fcnedge.specs import Blend, Provider, ProviderSpec, TileSpec, as_enum

log = logging.getLogger(__name__)

DEFAULT_TILE = TileSpec().size


def provider_spec(
    providers: str | Sequence[Provider | str] | ProviderSpec = "cpu", *, allow_fallback: bool = False, threads: int = 0
) -> ProviderSpec:
    """A ProviderSpec from ``"cuda,cpu"``, a list of names, or a ready spec.

    Raises:
        ConfigError: an unknown provider or an invalid thread count.
    """
    if isinstance(providers, ProviderSpec):
        return providers
    if isinstance(providers, str):
        names = parse_providers(providers)
    else:
        names = tuple(as_enum(Provider, p, what="provider") for p in providers)
    return ProviderSpec(providers=names, allow_fallback=allow_fallback, threads=threads)


def engine_for(spec: ProviderSpec) -> tuple[bool, ProviderSpec]:
    """Whether the native OpenVINO engine runs (``openvino`` first and installed), and the spec for ONNX Runtime
    otherwise (``openvino`` dropped with a warning when --allow-fallback names more providers).

    Raises:
        ProviderUnavailableError: ``openvino`` first, not installed, and nothing allowed to fall back to.
    """
    if spec.providers[0] is not Provider.OPENVINO:
        return False, spec
    if openvino_available():
        return True, spec
    if not (spec.allow_fallback and len(spec.providers) > 1):
        raise ProviderUnavailableError(f"provider 'openvino' needs the openvino package: {OV_INSTALL}")
    log.warning("provider 'openvino' is not installed (%s); falling back (--allow-fallback)", OV_INSTALL)
    return False, replace(spec, providers=spec.providers[1:])


def check_providers(spec: ProviderSpec) -> None:
    """Fail before any work when the requested providers cannot run (the same rule the sessions apply).

    Raises:
        ProviderUnavailableError: see :func:`engine_for` and :func:`fcnedge.runtime.providers.resolve`.
    """
    native, ort_spec = engine_for(spec)
    if not native:
        resolve(ort_spec)


def open_session(
    path: Path, spec: ProviderSpec, *, meta: ModelMeta | None, tile: tuple[int, int] | None, optimization: str
) -> Session | OpenVINOSession:
    """The engine for ``spec``: native OpenVINO when ``openvino`` comes first, else ONNX Runtime (``tile``, in
    model-input pixels, shapes TensorRT's profile).

    Raises:
        ProviderUnavailableError: see :func:`engine_for` and :class:`Session`.
    """
    if is_ir(path):  # an OpenVINO IR runs on OpenVINO only (the CPU provider means OpenVINO's CPU device)
        others = [p for p in spec.providers if p not in (Provider.OPENVINO, Provider.CPU)]
        if others and spec.providers[0] is not Provider.OPENVINO:
            raise ProviderUnavailableError(
                f"{path} is an OpenVINO IR, which only OpenVINO runs: drop --provider {others[0].value} (or pass "
                "--provider openvino), or run the .onnx file on that provider"
            )
        if not openvino_available():
            raise ProviderUnavailableError(f"{path} is an OpenVINO IR: running it needs OpenVINO: {OV_INSTALL}")
        return OpenVINOSession(path, spec, meta=meta, precision=spec.openvino_precision)
    native, ort_spec = engine_for(spec)
    if native and is_ort_format(path):
        raise ProviderUnavailableError(
            f"{path} is in ONNX Runtime's own format (.ort), which only ONNX Runtime runs: drop --provider openvino, "
            "or run its model.onnx on OpenVINO"
        )
    if native:
        return OpenVINOSession(path, spec, meta=meta, precision=spec.openvino_precision)
    return Session(path, ort_spec, meta=meta, tile=tile, optimization=optimization)


def predictor_for(
    runner: Runner,
    meta: ModelMeta,
    tile: TileSpec,
    *,
    fixed_hw: tuple[int, int] | None = None,
    tile_explicit: bool = True,
    max_batch: int = 1 << 16,
    threads: int = 0,
    session: Session | OpenVINOSession | None = None,
    scale: float | None = None,
) -> TiledPredictor:
    """The predictor around any runner (an ORT session, a torch module, OpenVINO): the tile fitted to a
    fixed-size model, every option applied.

    Raises:
        ConfigError: an explicit tile that a fixed-size model cannot take, or a tile that does not fit the stride.
    """
    ts = fit_tile_to_model(tile, fixed_hw, explicit=tile_explicit)
    ids_runner = session.run_ids if session is not None and session.has_ids else None
    return TiledPredictor(
        runner,
        meta,
        ts,
        max_batch=max_batch,
        threads=threads,
        fixed=fixed_hw is not None,
        session=session,
        ids_runner=ids_runner,
        input_dtype=session.input_dtype if session is not None else np.float32,
        scale=scale,
    )


def open_predictor(
    source: str | Path | None = None,
    *,
    providers: str | Sequence[Provider | str] | ProviderSpec | None = "cpu",
    allow_fallback: bool = False,
    threads: int | None = 0,
    tile: tuple[int, int] | None = None,
    default_tile: tuple[int, int] | None = None,
    overlap: float = 0.25,
    blend: Blend | str = Blend.MEAN,
    batch: int | None = 4,
    meta: ModelMeta | None = None,
    num_classes: int | None = None,
    optimization: str = "all",
    flip: bool = False,
    scale: float | None = None,
) -> TiledPredictor:
    """Open a model for prediction, ready to share across threads.

    Args:
        source: None or ``default`` (the bundled int8 model), a catalog name, an .onnx file, or (with torch
            installed) a .pt checkpoint or an architecture name, exported on first use into the cache.
        providers: ``cpu``, ``cuda``, ``tensorrt``, ``openvino``, ``coreml``, ``dml``, an ordered list, or a
            ProviderSpec. Strict: a missing provider is an error unless ``allow_fallback``. None: what
            ``fcnedge tune`` picked for this model on this machine, else ``cpu`` (likewise ``threads`` and
            ``batch``: None takes the tuned value, else 0 and 4).
        allow_fallback: warn and continue on the next provider instead of failing.
        threads: intra-op threads for the model and the argmax (0: ONNX Runtime's default).
        tile: (height, width) of a tile in model-input pixels, multiples of the stride; a fixed-size model that
            takes another size is an error. None: ``default_tile`` if given, else the tile the model's meta names,
            else 320x480 (a fixed-size model: the only size it takes).
        default_tile: the tile when ``tile`` is None, in image pixels (the demo passes its frame size; it is
            scaled by the inference scale and rounded up to the stride).
        overlap: fraction of a tile shared with its neighbour, in [0, 1).
        blend: ``mean`` (the seed's rule) or ``hann``.
        batch: tiles per session call (when the model's batch axis is dynamic).
        meta: a ModelMeta for a model that carries none (exported elsewhere).
        num_classes: K for an architecture name.
        optimization: ONNX Runtime graph optimisation level (all, extended, basic, none).
        flip: flip test-time augmentation (each tile also runs mirrored; twice the inference).
        scale: inference scale: images are resized by it before the model and the logits resized back (None: the
            model meta's, 1.0 for most models; the bundled default names its own).

    Raises:
        FcnEdgeError: an unknown or missing model, provider, or invalid option; the message names the fix.
    """
    check_scale(scale)  # before anything is opened
    src = identify(source)
    path = onnx_path(src, num_classes=num_classes)
    tuned = read_tuned(path) if None in (providers, threads, batch) else None
    if tuned is not None:
        log.info("using %s's tuned configuration for what was not given", tuned.path)
    providers = providers if providers is not None else (tuned.provider if tuned else "cpu")
    threads = threads if threads is not None else (tuned.threads if tuned else 0)
    batch = batch if batch is not None else (tuned.batch if tuned else 4)
    if tuned is not None and tuned.file is not None:  # tune picked the model's exact fast form
        log.info("opening %s, the fast form of %s that fcnedge tune picked", tuned.file, path)
        path = tuned.file
    spec = provider_spec(providers, allow_fallback=allow_fallback, threads=threads)
    if Provider.TENSORRT in spec.providers and tile is None and meta is None:  # its shape profile needs the tile
        meta = read_onnx_meta(path)[0]
    # the tile only shapes TensorRT's profile: the predictor's own tile (resolve_tile), where the meta is known
    session_tile = resolve_tile(meta, tile=tile, default_tile=default_tile, scale=scale) if meta else tile
    session = open_session(path, spec, meta=meta, tile=session_tile, optimization=optimization)
    check_contract(session)
    ts = TileSpec(
        size=resolve_tile(session.meta, tile=tile, default_tile=default_tile, scale=scale),
        overlap=overlap,
        blend=blend,  # type: ignore[arg-type]
        batch=batch,
        flip=flip,
    )
    pred = predictor_for(
        session.run,
        session.meta,
        ts,
        fixed_hw=session.fixed_hw,
        tile_explicit=tile is not None,
        max_batch=session.max_batch,
        threads=threads,
        session=session,
        scale=scale,
    )
    pred.tuned = tuned
    h, w = pred.spec.size
    log.info("opened %s (%s) on %s, tile %dx%d, scale %g", path, src.kind.value, session.provider, h, w, pred.scale)
    return pred


def resolve_tile(
    meta: ModelMeta,
    *,
    tile: tuple[int, int] | None = None,
    default_tile: tuple[int, int] | None = None,
    scale: float | None = None,
) -> tuple[int, int]:
    """The tile a predictor uses, in model-input pixels: ``tile`` as given; else ``default_tile`` (image pixels)
    at the inference scale, rounded up to the stride; else the meta's tile; else 320x480."""
    if tile is not None:
        return tile
    if default_tile is not None:
        return scaled_input(*default_tile, meta.scale if scale is None else scale, meta.stride)
    return meta.tile or DEFAULT_TILE


def check_contract(session: Session | OpenVINOSession) -> None:
    """Refuse, when it is opened, a model that is not an FCN for its meta: the output must be (N, K, H, W) logits
    of the input's size, finite, for a probe input (the fixed size, or two strides square).

    Raises:
        ModelMetaError: a wrong output rank, channel count or size, or NaN/inf logits.
    """
    meta, path = session.meta, session.path
    k = meta.num_classes
    shape = session.output_shape
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != k):
        raise ModelMetaError(
            f"{path} outputs {shape} but its meta (or --num-classes) says {k} classes: fcnedge runs models whose "
            f"output is (N, {k}, H, W) logits; check --num-classes or re-export the model"
        )
    h, w = session.fixed_hw or (2 * meta.stride, 2 * meta.stride)
    y = session.run(np.zeros((1, 3, h, w), dtype=session.input_dtype))
    if y.shape != (1, k, h, w):
        raise ModelMetaError(
            f"{path} maps a 1x3x{h}x{w} input to {'x'.join(map(str, y.shape))}: fcnedge needs 1x{k}x{h}x{w} logits "
            "(same size as the input); this is not a segmentation model it can tile"
        )
    if not np.isfinite(y).all():
        raise ModelMetaError(
            f"{path} produces NaN or infinite logits on a probe input: its weights are corrupt or from a diverged "
            "run; re-export it from a good checkpoint"
        )


def check_model_input(pred: TiledPredictor, shape: tuple[int, int]) -> None:
    """Raise unless a fixed-size model can take ``shape`` as a whole (benchmarks time whole inputs).

    Raises:
        ConfigError: the model's fixed size differs from ``shape``.
    """
    check_fixed_size(pred.spec.size if pred.fixed else None, shape)


def check_fixed_size(fixed_hw: tuple[int, int] | None, shape: tuple[int, int], *, scale: float = 1.0) -> None:
    """Raise unless a model of fixed input ``fixed_hw`` (None: dynamic) takes ``shape`` (the bench's --shape,
    as the model input: the image at ``scale``, padded to the stride).

    Raises:
        ConfigError: the model's fixed size differs from ``shape``.
    """
    if fixed_hw is not None and tuple(fixed_hw) != tuple(shape):
        h, w = fixed_hw
        at = f" (the --shape image at the model's scale {scale:g}; --scale 1 times one tile)" if scale != 1 else ""
        raise ConfigError(
            f"the model accepts only {h}x{w} inputs, not {shape[0]}x{shape[1]}{at}: pass --shape {h}x{w}"
            + (" --scale 1" if at else "")
        )
