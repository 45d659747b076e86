"""The one place fcnedge's exceptions are defined.

Every error a user can cause is an :class:`FcnEdgeError`. The CLI turns one into a single line on stderr and
exit code 2; anything else keeps its traceback because it is a bug.
"""

from __future__ import annotations


class FcnEdgeError(Exception):
    """Base class: a problem with the user's input or environment, with the fix in the message."""


class ConfigError(FcnEdgeError):
    """An option or argument value is invalid."""


class MissingDependencyError(FcnEdgeError):
    """An optional dependency (torch, onnx, onnxsim, ...) is not installed."""


class ProviderUnavailableError(FcnEdgeError):
    """A requested ONNX Runtime execution provider is not available."""


class ExportError(FcnEdgeError):
    """Exporting, simplifying or quantising a model failed."""


class ParityError(ExportError):
    """An exported model does not reproduce the reference within tolerance."""


class AccuracyGateError(ExportError):
    """A quantised model lost more accuracy than allowed."""


class ModelMetaError(FcnEdgeError):
    """A checkpoint or ONNX model is missing, corrupt, or carries invalid metadata."""


class CheckpointError(ModelMetaError):
    """A checkpoint file cannot be read or does not match what was asked for."""


class TrainingError(FcnEdgeError):
    """Training cannot go on (a non-finite loss, say)."""


class InputImageError(FcnEdgeError):
    """An input image cannot be read or used."""


class DatasetError(FcnEdgeError):
    """A dataset folder is missing, incomplete or inconsistent."""


class OutputExistsError(FcnEdgeError):
    """An output file exists and ``--force`` was not given."""


class OutputError(FcnEdgeError):
    """An output cannot be written (disk full, folder removed, permissions) while a command runs."""


class SourceError(FcnEdgeError):
    """A demo video source cannot be opened or read."""
