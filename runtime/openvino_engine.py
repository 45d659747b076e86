"""``--provider openvino``: the native OpenVINO runtime behind the same interface as :class:`Session`.

It reads the same .onnx file (fp32, int8 QDQ, with or without a runtime upsampling or an ids output), compiles one
static-shape model per input shape on first use (OpenVINO's best case; tiles repeat their shape) and keeps an
infer request per thread, so a predictor on it may be shared by threads like one on ONNX Runtime. Precision is
f32 unless asked (OpenVINO would otherwise compute in bf16 on CPUs that have it, silently).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import ConfigError, ModelMetaError, ProviderUnavailableError
from fcnedge.meta import ModelMeta
from fcnedge.runtime.session import ModelIO, _check_file, _inspect
from fcnedge.specs import ProviderSpec

log = logging.getLogger(__name__)

INSTALL = "pip install 'fcnedge[openvino]'"


def openvino_available() -> bool:
    """Whether the native openvino package can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVINOSession(ModelIO):
    """An fcnedge model compiled by OpenVINO for the CPU.

    Args:
        path: the .onnx file.
        spec: threads (``INFERENCE_NUM_THREADS``; 0: OpenVINO's default) and the device (``openvino_device``).
        meta: use this meta instead of (or when there is no) embedded one.
        precision: ``f32`` or ``bf16`` (bf16 only where the CPU computes it).

    Raises:
        ProviderUnavailableError: openvino is not installed, or the device is not there.
        ConfigError: bf16 on a CPU without it.
        ModelMetaError: see :class:`Session`.
    """

    def __init__(
        self, path: Path, spec: ProviderSpec | None = None, *, meta: ModelMeta | None = None, precision: str = "f32"
    ) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ProviderUnavailableError(f"provider 'openvino' needs the openvino package: {INSTALL}") from None
        self.path = Path(path)
        self.spec = spec or ProviderSpec()
        _check_file(self.path)
        self.core = ov.Core()
        ir = is_ir(self.path)
        if ir:  # an OpenVINO IR: its names, shapes and fcnedge metadata (rt_info) read by OpenVINO itself
            self._read_graph(IRGraph(self._read(ov)), meta)
        else:
            self._read_graph(_inspect(self.path), meta)
        device = self.spec.openvino_device
        if device not in self.core.available_devices:
            raise ProviderUnavailableError(
                f"OpenVINO device {device!r} is not available (available: {', '.join(self.core.available_devices)})"
            )
        if precision == "bf16" and "BF16" not in self.core.get_property(device, "OPTIMIZATION_CAPABILITIES"):
            raise ConfigError(f"OpenVINO bf16 needs a CPU with AVX512-BF16 or AMX; {device} has none: use f32")
        if not ir:
            self._read(ov)
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        if self.spec.threads:
            self.config["INFERENCE_NUM_THREADS"] = self.spec.threads
        self.provider = f"OpenVINO-{device} {ov.__version__.split('-')[0]} ({precision})"
        self.use_io_binding = False
        self._compiled: dict[tuple[int, ...], Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        names = [o.get_any_name() for o in self.model.outputs]
        self._logits_index = names.index(self.output_name)
        self._ids_index = names.index(self.ids_name) if self.ids_name is not None else None

    def _read(self, ov: Any) -> Any:
        try:
            self.model: Any = self.core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
            raise ModelMetaError(f"OpenVINO cannot read {self.path} ({str(exc).splitlines()[0][:160]})") from None
        return self.model

    def _request(self, shape: tuple[int, ...]) -> Any:
        """This thread's infer request for the model compiled at ``shape`` (compiled once, on first use)."""
        requests: dict[tuple[int, ...], Any] | None = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = {}
        if shape not in requests:
            with self._lock:
                if shape not in self._compiled:
                    model = self.model.clone()
                    model.reshape({model.inputs[0]: list(shape)})
                    self._compiled[shape] = self.core.compile_model(model, self.spec.openvino_device, self.config)
                    log.info("OpenVINO compiled %s for input %s", self.path.name, shape)
                requests[shape] = self._compiled[shape].create_infer_request()
        return requests[shape]

    def _infer(self, batch: NDArray[np.float32], index: int) -> Any:
        request = self._request(tuple(batch.shape))
        request.infer({0: np.ascontiguousarray(batch)})
        # the request owns its output memory and the next inference overwrites it: copy out
        return np.array(request.get_output_tensor(index).data, copy=True)

    def run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """(N, 3, H, W) float32 -> (N, K, H, W) float32 logits (upsampled here when the model ends at stride s)."""
        return self._finish(self.run_graph(batch))

    def run_graph(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """The graph's own output: the logits, at stride s for a ``--runtime-upsampling`` model."""
        out: NDArray[np.float32] = self._infer(batch, self._logits_index)
        return out

    def graph_ids(self, batch: NDArray[np.float32]) -> NDArray[np.uint8]:
        """The graph's own ``ids`` output (``--ids-output`` models)."""
        assert self._ids_index is not None  # run_ids asks only when the graph has one
        out: NDArray[np.uint8] = self._infer(batch, self._ids_index)
        return out

    __call__ = run


RT_INFO = ["fcnedge", "metadata_props"]  # where an IR keeps the ONNX file's fcnedge entries (JSON of a dict)


_ORT_TYPES = {"f32": "tensor(float)", "u8": "tensor(uint8)"}  # OpenVINO element type -> ONNX Runtime's name


def is_ir(path: Path) -> bool:
    """Whether ``path`` is an OpenVINO IR (``.xml``)."""
    return Path(path).suffix.lower() == ".xml"


class IRGraph:
    """An OpenVINO IR model seen through the interface :meth:`ModelIO._read_graph` reads from an ONNX Runtime
    session: inputs and outputs with ORT-style types and shapes, and the fcnedge metadata the IR carries in its
    rt_info (written by ``fcnedge convert --target openvino``)."""

    class _Arg:
        def __init__(self, port: Any) -> None:
            self.name = port.get_any_name()
            self.type = _ORT_TYPES.get(port.get_element_type().get_type_name(), str(port.get_element_type()))
            self.shape = [int(d.get_length()) if d.is_static else "?" for d in port.get_partial_shape()]

    class _Meta:
        def __init__(self, custom: dict[str, str]) -> None:
            self.custom_metadata_map = custom

    def __init__(self, model: Any) -> None:
        import json

        self.model = model
        custom: dict[str, str] = {}
        if model.has_rt_info(RT_INFO):
            try:
                custom = {str(k): str(v) for k, v in json.loads(model.get_rt_info(RT_INFO).astype(str)).items()}
            except (ValueError, AttributeError):
                custom = {}
        self.custom = custom

    def get_inputs(self) -> list[Any]:
        return [IRGraph._Arg(p) for p in self.model.inputs]

    def get_outputs(self) -> list[Any]:
        return [IRGraph._Arg(p) for p in self.model.outputs]

    def get_modelmeta(self) -> Any:
        return IRGraph._Meta(self.custom)


def read_ir(path: Path) -> IRGraph:
    """An IR's graph facts and fcnedge metadata, read by OpenVINO (nothing compiled).

    Raises:
        ProviderUnavailableError: openvino is not installed.
        ModelMetaError: OpenVINO cannot read the file.
    """
    try:
        import openvino as ov
    except ImportError:
        raise ProviderUnavailableError(f"{path} is an OpenVINO IR: reading it needs OpenVINO: {INSTALL}") from None
    try:
        return IRGraph(ov.Core().read_model(str(path)))
    except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
        raise ModelMetaError(f"OpenVINO cannot read {path} ({str(exc).splitlines()[0][:160]})") from None


def query_support(path: Path, shape: tuple[int, int] | None = None) -> list[tuple[str, int, int, tuple[str, ...]]]:
    """For each OpenVINO device here: (device, operations, operations it supports, the types it does not), from
    ``query_model`` on the model read from ``path`` (reshaped to (1, 3, H, W) when ``shape`` is given). Nothing is
    compiled.

    Raises:
        ProviderUnavailableError: openvino is not installed.
    """
    try:
        import openvino as ov
    except ImportError:
        raise ProviderUnavailableError(f"OpenVINO is not installed: {INSTALL}") from None
    core = ov.Core()
    model = core.read_model(str(path))
    if shape is not None:
        model.reshape({model.inputs[0]: [1, 3, *shape]})
    ops = model.get_ops()
    out = []
    for device in core.available_devices:
        supported = core.query_model(model, device)
        missing = sorted({op.get_type_name() for op in ops if op.get_friendly_name() not in supported})
        out.append((device, len(ops), sum(op.get_friendly_name() in supported for op in ops), tuple(missing)))
    return out
