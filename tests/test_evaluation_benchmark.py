"""benchmarks/evaluate_kodak.py: the docs region writer and one real run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lbam.errors import LbamError
from shared_data import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
SHARED = SHARED_DATA


def load_script():
    spec = importlib.util.spec_from_file_location("evaluate_kodak", REPO / "benchmarks" / "evaluate_kodak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = load_script()
REGION = f"{script.START}\nnew table\n{script.END}"


def test_region_replaces_only_its_part():
    old = f"# Benchmarks\n\n## Speed\nkept\n\n{script.START}\nold table\n{script.END}\n\n## Training\nalso kept\n"
    new = script.replace_region(old, REGION)
    assert new == f"# Benchmarks\n\n## Speed\nkept\n\n{REGION}\n\n## Training\nalso kept\n"
    assert script.replace_region(new, REGION) == new  # idempotent


def test_region_is_appended_when_missing():
    assert (
        script.replace_region("# Benchmarks\n\n## Speed\nkept\n", REGION)
        == f"# Benchmarks\n\n## Speed\nkept\n\n{REGION}\n"
    )
    assert script.replace_region("", REGION) == f"{REGION}\n"


def test_broken_markers_are_an_error():
    with pytest.raises(LbamError, match="broken"):
        script.replace_region(f"{script.START}\nno end\n", REGION)
    with pytest.raises(LbamError, match="broken"):
        script.replace_region(f"{script.END}\n{script.START}\n", REGION)


@pytest.mark.slow
@pytest.mark.skipif(
    not SHARED.is_dir(), reason="needs the shared data folder (Kodak24 and the NVIDIA test masks)"
)
def test_script_writes_the_region_and_small_grids(tmp_path):
    docs = tmp_path / "docs" / "benchmarks.md"
    docs.parent.mkdir()
    docs.write_text("# Benchmarks\n\n## Other section\nuntouched\n")
    assert (
        script.main(
            [
                "--pairs",
                "1",
                "--docs",
                str(docs),
                "--images",
                str(SHARED / "eval" / "kodak24"),
                "--masks",
                str(SHARED / "masks" / "nvidia_irregular_test"),
            ]
        )
        == 0
    )
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\n## Other section\nuntouched\n\n<!-- evaluate:start -->")
    assert text.rstrip().endswith(script.END)
    assert "| pairs | 1 | 1 | 1 | 1 | 1 | 1 | 6 |" in text
    assert "| telea |" in text and "| biharmonic |" in text
    assert "--pairs 1 --seed 0" in text
    grids = sorted((tmp_path / "docs" / "images").glob("evaluate_grid_bin*.png"))
    assert len(grids) == 6
    for grid in grids:
        assert f"](images/{grid.name})" in text
        assert grid.stat().st_size < 300_000
