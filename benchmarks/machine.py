"""Facts about the machine a benchmark ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from fcnedge.host import cpu_flags, cpu_model

__all__ = ["cpu_flags", "cpu_model", "machine_facts"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, flags, package versions and available ONNX Runtime providers."""
    import onnxruntime as ort

    versions = {
        d: _version(d)
        for d in (
            "fcnedge",
            "onnxruntime",
            "onnxruntime-gpu",
            "torch",
            "onnx",
            "openvino",
            "numpy",
            "opencv-python-headless",
        )
    }
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {k: v for k, v in versions.items() if v},
        "ort_providers": ort.get_available_providers(),
    }


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter for this process (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mb(key: str) -> float | None:
    """A memory figure of this process from /proc/self/status, in MiB (None off Linux)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return None


def current_rss_mb() -> float | None:
    """Resident set size of this process now, in MiB (Linux VmRSS)."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process since the last reset, in MiB (Linux VmHWM)."""
    return _status_mb("VmHWM")
