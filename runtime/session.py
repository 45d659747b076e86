"""An ONNX Runtime session that knows its model: names, shapes and ModelMeta read from the graph."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import ConfigError, ModelMetaError
from fcnedge.meta import IDS_OUTPUT, META_KEY, RUNTIME_UPSAMPLING_KEY, ModelMeta
from fcnedge.runtime.providers import check_session_providers, resolve
from fcnedge.runtime.upsample import upsample_bilinear, upsampled_ids
from fcnedge.specs import Provider, ProviderSpec

log = logging.getLogger(__name__)

# the ONNX ops of an int8 model (QDQ or QOperator form)
QUANT_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"}
)


def quantised_ops(proto: Any) -> list[str]:
    """The int8 op types in an ONNX ModelProto, sorted (empty for a float model)."""
    return sorted({n.op_type for n in proto.graph.node} & QUANT_OPS)


def _load_error(path: Path, exc: Exception) -> ModelMetaError:
    return ModelMetaError(
        f"{path} is not a loadable ONNX model ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}): "
        "re-export it with fcnedge export"
    )


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ModelMetaError(f"model {path} does not exist: check the path or run fcnedge export")
    if path.stat().st_size == 0:
        raise ModelMetaError(f"model {path} is empty (0 bytes): re-export it with fcnedge export")


def read_onnx_meta(path: Path) -> tuple[ModelMeta | None, dict[str, Any]]:
    """The embedded ModelMeta (None if absent) and a few facts about an .onnx file, without running it.

    Raises:
        ModelMetaError: missing, corrupt or truncated file, or invalid embedded meta.
    """
    path = Path(path)
    _check_file(path)
    kind = "onnx"
    if path.suffix.lower() == ".xml":  # an OpenVINO IR: read by OpenVINO (its import would be circular at the top)
        from fcnedge.runtime.openvino_engine import read_ir

        sess, kind = read_ir(path), "openvino-ir"
    else:
        sess = _inspect(path)
    check_one_input(path, sess.get_inputs())
    custom = sess.get_modelmeta().custom_metadata_map
    meta = ModelMeta.from_json(custom[META_KEY]) if META_KEY in custom else None
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    extra = {
        "kind": kind,
        "file_bytes": path.stat().st_size,
        "input": f"{inp.name} {inp.shape} {inp.type}",
        "fixed_hw": tuple(inp.shape[2:4]) if all(isinstance(d, int) for d in inp.shape[2:4]) else None,
        "output": f"{out.name} {out.shape} {out.type}",
        **{k: v for k, v in custom.items() if k != META_KEY},
    }
    return meta, extra


def check_one_input(path: Path, inputs: list[Any]) -> None:
    """Refuse a graph with more than one input: fcnedge feeds one image batch.

    Raises:
        ModelMetaError: the inputs, named.
    """
    if len(inputs) != 1:
        names = ", ".join(f"{i.name} {i.shape}" for i in inputs)
        raise ModelMetaError(
            f"model {path} has {len(inputs)} inputs ({names}): fcnedge runs models with one image input "
            "(N, 3, H, W); export it with only the image as input"
        )


class ModelIO(ABC):
    """What any engine knows of an fcnedge model from its graph: names, shapes, meta, and the runtime duties it
    asks for (a final upsampling, an ids output). Read from an ONNX Runtime session of the file."""

    path: Path
    provider: str
    spec: ProviderSpec

    def _read_graph(self, sess: Any, meta: ModelMeta | None) -> None:
        """Fill the facts from ``sess`` (an onnxruntime.InferenceSession of ``self.path``).

        Raises:
            ModelMetaError: more than one input, an input that is not (N, 3, H, W), no meta and none given, or
                invalid fcnedge entries.
        """
        check_one_input(self.path, sess.get_inputs())
        inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        if inp.type not in ("tensor(float)", "tensor(uint8)"):
            raise ModelMetaError(f"{self.path} input {inp.name} is {inp.type}: fcnedge feeds float32 or uint8 RGB")
        # uint8: the model takes pixels and normalises them itself (fcnedge export --uint8-input)
        self.input_dtype: type[np.generic] = np.uint8 if inp.type == "tensor(uint8)" else np.float32
        self.input_shape: list[Any] = list(inp.shape)
        self.output_shape: list[Any] = list(out.shape)
        if len(self.input_shape) != 4 or (isinstance(self.input_shape[1], int) and self.input_shape[1] != 3):
            raise ModelMetaError(f"{self.path} input {inp.name} has shape {inp.shape}: expected (N, 3, H, W)")
        custom = sess.get_modelmeta().custom_metadata_map
        self.meta = meta or self._embedded_meta(custom)
        self.upsample_stride = self._runtime_upsampling(custom)
        ids = [o for o in sess.get_outputs()[1:] if o.name == IDS_OUTPUT and o.type == "tensor(uint8)"]
        self.ids_name: str | None = ids[0].name if ids else None

    def _embedded_meta(self, custom: dict[str, str]) -> ModelMeta:
        if META_KEY not in custom:
            raise ModelMetaError(
                f"{self.path} carries no fcnedge metadata: export it with fcnedge export (fcnedge predict also runs "
                "such a model with --num-classes, and --mean/--std if not ImageNet's)"
            )
        return ModelMeta.from_json(custom[META_KEY])

    def _runtime_upsampling(self, custom: dict[str, str]) -> int:
        """The stride the runtime upsamples by (1: the model outputs full-resolution logits itself)."""
        text = custom.get(RUNTIME_UPSAMPLING_KEY)
        if text is None:
            return 1
        try:
            spec = json.loads(text)
            stride = int(spec["stride"])
            ok = spec.get("kind") == "bilinear-transposed-conv" and stride >= 2
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ModelMetaError(f"{self.path} has an invalid {RUNTIME_UPSAMPLING_KEY} entry: re-export it")
        return stride

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        """(H, W) when the model accepts only one size, else None."""
        h, w = self.input_shape[2:]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None

    @property
    def max_batch(self) -> int:
        """How many images one call may hold (1 when the batch axis is fixed)."""
        n = self.input_shape[0]
        return n if isinstance(n, int) else 1 << 16

    def _finish(self, logits: NDArray[np.float32]) -> NDArray[np.float32]:
        """The runtime's share of the model: the final upsampling when the graph ends at stride s."""
        return upsample_bilinear(logits, self.upsample_stride) if self.upsample_stride > 1 else logits

    @property
    def has_ids(self) -> bool:
        """Class ids come without full-resolution logits: the graph's own ArgMax (``--ids-output``), or the
        boundary-only argmax of a runtime upsampling (``--runtime-upsampling``)."""
        return self.ids_name is not None or self.upsample_stride > 1

    @abstractmethod
    def run_graph(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """The graph's own output: the logits, at stride s for a ``--runtime-upsampling`` model."""

    @abstractmethod
    def graph_ids(self, batch: NDArray[np.float32]) -> NDArray[np.uint8]:
        """The graph's own ``ids`` output (``--ids-output`` models)."""

    def run_ids(self, batch: NDArray[np.float32]) -> NDArray[np.uint8]:
        """(N, 3, H, W) -> (N, H, W) uint8 class ids, no full-resolution logits: from the graph's own ArgMax
        (``--ids-output``) or the boundary-only argmax of the runtime upsampling (``--runtime-upsampling``).

        Raises:
            ModelMetaError: the model has neither.
        """
        if self.ids_name is not None:
            return self.graph_ids(batch)
        if self.upsample_stride > 1:
            return self.ids_from_graph(self.run_graph(batch))
        raise ModelMetaError(f"{self.path} has no ids output: export it with --ids-output or --runtime-upsampling")

    def ids_from_graph(self, out: NDArray[np.float32]) -> NDArray[np.uint8]:
        """(N, K, h, w) stride-s logits of a ``--runtime-upsampling`` graph -> (N, h*s, w*s) class ids, exactly
        as the argmax of their upsampling (:func:`fcnedge.runtime.upsample.upsampled_ids`)."""
        return np.stack([upsampled_ids(x, self.upsample_stride, threads=self.spec.threads) for x in out])


class Session(ModelIO):
    """Wraps ``onnxruntime.InferenceSession`` for an image-to-logits model.

    Args:
        path: the .onnx file.
        spec: providers, threads, fallback policy.
        meta: use this meta instead of (or when there is no) embedded one.
        tile: tile size, used to derive TensorRT shape profiles.
        optimization: ORT graph optimisation level name (``all``, ``extended``, ``basic``, ``none``).

    Raises:
        ModelMetaError: missing/corrupt file, no meta and none given, or an input that is not (N, 3, H, W).
        ProviderUnavailableError: see :mod:`fcnedge.runtime.providers`.
    """

    def __init__(
        self,
        path: Path,
        spec: ProviderSpec | None = None,
        *,
        meta: ModelMeta | None = None,
        tile: tuple[int, int] | None = None,
        optimization: str = "all",
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.spec = spec or ProviderSpec()
        _check_file(self.path)
        name = _probe_input_name(self.path) if Provider.TENSORRT in self.spec.providers else None
        providers = resolve(self.spec, tile=tile, input_name=name)
        so = ort.SessionOptions()
        so.graph_optimization_level = _opt_level(optimization)
        if self.spec.threads:
            so.intra_op_num_threads = self.spec.threads
        try:
            self.ort = ort.InferenceSession(str(self.path), so, providers=providers)
        except Exception as exc:
            raise _load_error(self.path, exc) from None
        check_session_providers(
            [p for p, _ in providers], self.ort.get_providers(), allow_fallback=self.spec.allow_fallback
        )
        self.provider = self.ort.get_providers()[0]
        self._read_graph(self.ort, meta)
        self.use_io_binding = self.provider == "CUDAExecutionProvider"
        log.info("session %s on %s (input %s %s)", self.path.name, self.provider, self.input_name, self.input_shape)

    def run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """(N, 3, H, W) float32 -> (N, K, H, W) float32 logits (upsampled here when the model ends at stride s).
        Thread-safe: ONNX Runtime's run is, and nothing else is shared."""
        return self._finish(self.run_graph(batch))

    def run_graph(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """The graph's own output: the logits, at stride s for a ``--runtime-upsampling`` model."""
        if self.use_io_binding:
            return self._run_bound(batch)
        out: NDArray[np.float32] = self.ort.run([self.output_name], {self.input_name: batch})[0]
        return out

    def graph_ids(self, batch: NDArray[np.float32]) -> NDArray[np.uint8]:
        """The graph's own ``ids`` output (``--ids-output`` models)."""
        out: NDArray[np.uint8] = self.ort.run([self.ids_name], {self.input_name: batch})[0]
        return out

    def _run_bound(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        binding = self.ort.io_binding()
        binding.bind_cpu_input(self.input_name, np.ascontiguousarray(batch))
        binding.bind_output(self.output_name, "cpu")
        self.ort.run_with_iobinding(binding)
        out: NDArray[np.float32] = binding.copy_outputs_to_cpu()[0]
        return out

    __call__ = run


def _inspect(path: Path) -> Any:
    """An unoptimised CPU session, only to read the graph's names, shapes and metadata.

    Raises:
        ModelMetaError: the file is not a loadable ONNX model.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own pybind exception types
        raise _load_error(path, exc) from None


def inspection_session(
    model: bytes | str | Path,
    *,
    threads: int = 0,
    optimize: bool = True,
    profile_prefix: str | None = None,
    spin: bool = True,
) -> Any:
    """A plain CPU ONNX Runtime session for inspecting a graph, not for serving it: the exporters' parity checks
    and per-layer error ranking, the benchmarks' profiles and roofline probes, the predictor's argmax kernel. With
    :class:`Session`, the only place an ``InferenceSession`` is made (a test holds this).

    Args:
        model: a serialised ModelProto or a path.
        threads: intra-op threads (0: the runtime's default).
        optimize: False keeps every tensor by its name (no graph optimisation).
        profile_prefix: turn ONNX Runtime's profiler on, writing under this prefix.
        spin: False lets the worker threads sleep as soon as a run ends (the predictor's argmax kernel runs right
            before the model's own session, whose cores a spinning pool would steal).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])


def _probe_input_name(path: Path) -> str:
    """The graph's input name (TensorRT shape profiles are keyed by it)."""
    return str(_inspect(path).get_inputs()[0].name)


def _opt_level(name: str) -> Any:
    import onnxruntime as ort

    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }
    if name not in levels:
        raise ConfigError(f"optimisation level {name!r} is unknown: choose one of {', '.join(levels)}")
    return levels[name]
