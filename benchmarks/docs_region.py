"""Shared by the benchmark scripts: one marked region of docs/benchmarks.md each, and the machine."""

from __future__ import annotations

from pathlib import Path

from lbam.utils.files import atomic_write_text
from lbam.utils.machine import machine_description

__all__ = ["machine_description", "update_region", "write_benchmark_section"]


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
