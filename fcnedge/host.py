"""Facts about the CPU this process runs on (read from /proc/cpuinfo; no third-party imports)."""

from __future__ import annotations

import platform
from pathlib import Path

INT8_FLAGS = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "amx_bf16"}
VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}
BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform's guess)."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The int8-relevant instruction-set flags this CPU has."""
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return []
    for line in info.read_text().splitlines():
        if line.startswith("flags"):
            return sorted(set(line.split(":", 1)[1].split()) & INT8_FLAGS)
    return []


def int8_isa(flags: list[str] | None = None) -> list[str]:
    """The flags that decide int8 speed, for reports beside a figure: AVX2, the VNNI family and AMX."""
    flags = cpu_flags() if flags is None else flags
    return sorted(f for f in flags if f == "avx2" or "vnni" in f.lower() or "amx" in f.lower())


X86_MACHINES = ("x86_64", "amd64", "i386", "i686")


def is_x86(machine: str | None = None) -> bool:
    """Whether ``machine`` (default: this one, per ``platform.machine()``) is an x86 CPU."""
    return (machine or platform.machine()).lower() in X86_MACHINES


def int8_reduce_range(machine: str | None = None, flags: list[str] | None = None) -> tuple[bool, str]:
    """Whether int8 weights should use 7 bits on this host, and why.

    x86 CPUs without VNNI multiply uint8 x int8 with ``vpmaddubsw``, whose int16 sums saturate: ONNX Runtime's
    guidance is ``reduce_range`` there. With VNNI/AMX (or on ARM) full 8-bit weights are exact.
    """
    machine = (machine or platform.machine()).lower()
    flags = cpu_flags() if flags is None else flags
    if not is_x86(machine):
        return False, f"{machine}: no U8S8 saturation issue, full 8-bit weights"
    vnni = sorted(set(flags) & VNNI_FLAGS)
    if vnni:
        return False, f"x86 with {', '.join(vnni)}: full 8-bit weights"
    return True, "x86 without VNNI (U8S8 products saturate in int16): 7-bit weights (reduce_range)"


def bf16_native(flags: list[str] | None = None) -> list[str]:
    """The flags that make bf16 compute native on this CPU (AVX512-BF16, AMX-BF16); empty when it is emulated."""
    return sorted(set(cpu_flags() if flags is None else flags) & BF16_FLAGS)
