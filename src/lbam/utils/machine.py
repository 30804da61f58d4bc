"""What this machine is, in the words benchmarks and reports use: CPU model and vector units."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_flags_and_model() -> tuple[str, set[str]]:
    """The CPU's model name and its feature flags (empty off Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return model, flags


def vector_units(flags: set[str]) -> str:
    """The widest vector unit and whether bfloat16 is native, e.g. "AVX2 (bfloat16 emulated)"."""
    if "amx_bf16" in flags:
        return "AVX-512 with AMX-BF16"
    if "avx512_bf16" in flags:
        return "AVX-512 with AVX512-BF16"
    if "avx512f" in flags:
        return "AVX-512 (bfloat16 emulated)"
    if "avx2" in flags:
        return "AVX2 (bfloat16 emulated)"
    return "vector units unknown"


def machine_description() -> str:
    """CPU model, logical CPUs and the vector units that decide the speed of fp32 and bf16 here.

    E.g. "AMD EPYC, 2 logical CPUs, AVX-512 with AVX512-BF16" or "..., AVX2 (bfloat16 emulated)":
    the same model name covers machines whose bfloat16 runs natively and ones where it is emulated.
    """
    model, flags = cpu_flags_and_model()
    return f"{model}, {os.cpu_count()} logical CPUs, {vector_units(flags)}"


def usable_cpus() -> int:
    """The logical CPUs this process may run on: its affinity where the OS reports one (a
    container or ``taskset`` may allow fewer than the machine has), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
