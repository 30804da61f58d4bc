"""Where the project's shared data lives: ``../shared/data`` beside the repo (as in CI), or the
folder named by ``$LBAM_SHARED_DATA``. Tests that need it skip when neither exists."""

from __future__ import annotations

import os
from pathlib import Path


def find_shared_data() -> Path:
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "data"]
    if os.environ.get("LBAM_SHARED_DATA"):
        candidates.insert(0, Path(os.environ["LBAM_SHARED_DATA"]))
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


SHARED_DATA = find_shared_data()


def shared_file(*parts: str) -> Path:
    """A file of the shared data; the test skips when the shared data is not beside the repo (CI
    always has it there)."""
    import pytest

    path = SHARED_DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"{path} not found: put shared/ beside the repo or set LBAM_SHARED_DATA")
    return path
