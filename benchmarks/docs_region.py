"""Shared by the benchmark scripts: one marked region of docs/benchmarks.md each, and the machine."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from lbam.utils.files import atomic_write_text


def update_region(path: Path, name: str, body: str, title: str = "# Benchmarks\n") -> None:
    """Put ``body`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` (appended if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else title
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(path, text)


def write_benchmark_section(name: str, title: str, made_by: str, text: str) -> Path:
    """Put a benchmark's section (a title, how it was made, its table) into docs/benchmarks.md."""
    path = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
    update_region(path, name, f"## {title}\n\nMade by `{made_by}`; {text}")
    return path


def machine_description() -> str:
    """CPU model, logical CPUs and the vector units that decide the speed of fp32 and bf16 here.

    E.g. "AMD EPYC, 2 logical CPUs, AVX-512 with AVX512-BF16" or "..., AVX2 (bfloat16 emulated)":
    the same model name covers machines whose bfloat16 runs natively and ones where it is emulated.
    """
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if "amx_bf16" in flags:
        units = "AVX-512 with AMX-BF16"
    elif "avx512_bf16" in flags:
        units = "AVX-512 with AVX512-BF16"
    elif "avx512f" in flags:
        units = "AVX-512 (bfloat16 emulated)"
    elif "avx2" in flags:
        units = "AVX2 (bfloat16 emulated)"
    else:
        units = "vector units unknown"
    return f"{model}, {os.cpu_count()} logical CPUs, {units}"
