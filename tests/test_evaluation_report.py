"""lbam.evaluation.report: summary numbers, Markdown tables, contact sheets."""

from __future__ import annotations

import numpy as np
import pytest

from lbam.evaluation.report import format_tables, make_grid, show_hole, summarize


def row(method: str, bin_: int, psnr: float, ssim: float, l1: float, seconds: float = 0.5) -> dict:
    return {"method": method, "bin": bin_, "psnr": psnr, "ssim": ssim, "l1": l1, "seconds": seconds}


def table_rows(markdown: str, heading: str) -> dict[str, list[str]]:
    block = markdown.split(heading)[1].split("\n\n**")[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 8 and cells[0] not in ("method", "---"):
            rows[cells[0]] = cells[1:]
    return rows


def test_summary_means_counts_and_times():
    rows = [
        row("a", 1, 30.0, 0.9, 0.010, 1.0),
        row("a", 1, 32.0, 0.8, 0.020, 2.0),
        row("a", 3, 20.0, 0.5, 0.100, 3.0),
        row("b", 1, 31.0, 0.85, 0.015),
        row("b", 1, float("inf"), 1.0, 0.0),
        row("b", 3, 21.0, 0.6, 0.090),
    ]
    summary = summarize(rows, ["a", "b"], ["psnr", "ssim", "l1"])
    a = summary["methods"]["a"]
    assert a["bins"]["1"] == {
        "count": 2,
        "psnr": 31.0,
        "ssim": pytest.approx(0.85),
        "l1": pytest.approx(0.015),
    }
    assert a["bins"]["2"] == {"count": 0, "psnr": None, "ssim": None, "l1": None}
    assert a["bins"]["all"]["psnr"] == pytest.approx(82 / 3)
    assert a["seconds"] == 6.0 and a["seconds_per_pair"] == 2.0
    assert summary["methods"]["b"]["bins"]["1"]["psnr"] is None  # an infinite mean is not a number
    assert summary["counts"] == {"1": 2, "2": 0, "3": 1, "4": 0, "5": 0, "6": 0, "all": 3}
    assert [b["label"] for b in summary["bins"]] == ["(0.01, 0.1]", "(0.1, 0.2]", "(0.2, 0.3]", "(0.3, 0.4]",
                                                     "(0.4, 0.5]", "(0.5, 0.6]"]  # fmt: skip


def test_tables_bold_the_best_including_printed_ties():
    rows = [
        row("a", 1, 30.001, 0.91, 0.0100),
        row("b", 1, 29.999, 0.90, 0.0200),  # PSNR prints as 30.00 too: a tie, both bold
        row("a", 2, 20.0, 0.50, 0.0600),
        row("b", 2, 22.0, 0.70, 0.0500),
    ]
    md = format_tables(summarize(rows, ["a", "b"], ["psnr", "ssim", "l1"]))
    psnr = table_rows(md, "**PSNR")
    assert psnr["a"][:2] == ["**30.00**", "20.00"]
    assert psnr["b"][:2] == ["**30.00**", "**22.00**"]
    assert psnr["a"][2:6] == ["–"] * 4  # bins without pairs
    ssim = table_rows(md, "**SSIM")
    assert ssim["a"][0] == "**0.9100**" and ssim["b"][0] == "0.9000"
    l1 = table_rows(md, "**mean L1")  # lower is better, shown in % of the range
    assert l1["a"][:2] == ["**1.000**", "6.000"]
    assert l1["b"][:2] == ["2.000", "**5.000**"]
    assert "| pairs | 1 | 1 | 0 | 0 | 0 | 0 | 2 |" in md
    assert "| a | 1.0 | 500.0 |" in md  # time: total s, ms per pair


def test_single_method_has_no_bold():
    md = format_tables(summarize([row("only", 1, 30.0, 0.9, 0.01)], ["only"], ["psnr", "ssim", "l1"]))
    assert "**30.00**" not in md and "| only | 30.00 |" in md


def test_grid_layout_and_hole_display():
    image = np.full((8, 8, 3), 40, np.uint8)
    known = np.ones((8, 8), bool)
    known[2:4, 2:4] = False
    shown = show_hole(image, known)
    assert (shown[2:4, 2:4] == 255).all() and (shown[known] == 40).all()
    wide = np.zeros((10, 20, 3), np.uint8)
    sheet = make_grid(
        ["in", "m", "gt"], [("row 1", [shown, image, wide]), ("row 2", [image, image, image])], tile=16
    )
    assert sheet.size == (3 * 16 + 2 * 2, 16 + 2 * (16 + 16 + 2))
    pixels = np.asarray(sheet)
    first_tile = pixels[32 : 32 + 16, :16]
    assert (first_tile[5:7, 5:7] > 230).all()  # the hole, scaled 2x (Lanczos), is white
    assert (first_tile[0, 0] == 40).all()
    # A 2:1 tile is fitted inside the cell on grey: the top rows of its cell are padding.
    assert (pixels[32, 2 * 18 + 8] == 128).all()
