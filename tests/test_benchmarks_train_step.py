"""benchmarks/train_step.py: its table, its docs region, and that its step is the trainer's step."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

from lbam.training.step import step_generator, train_step
from training_helpers import one_thread  # noqa: F401  (autouse: one torch thread for this module)

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "train_step.py"


@pytest.fixture(scope="module")
def bench():
    """The benchmark script imported as a module (it lives outside the package)."""
    spec = importlib.util.spec_from_file_location("benchmarks_train_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows of ``text`` keyed by their first cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_main_prints_parts_that_add_up_and_writes_the_docs_region(bench, capsys, tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nkept text\n")
    argv = ["--widths", "0.0625", "--size", "128", "--batch-size", "2", "--steps", "1", "--threads", "1"]
    argv += ["--precisions", "fp32"]
    results = bench.main([*argv, "--write-docs", "--docs", str(docs)])
    out = capsys.readouterr().out

    assert len(results) == 1
    result = results[0]
    assert (result["width"], result["size"], result["batch_size"], result["steps"]) == (0.0625, 128, 2, 1)
    assert len(result["step_times"]) == 1 and result["median_s"] > 0
    keys = [key for key, _ in bench.PARTS] + [bench.REST[0]]
    assert sorted(result["share"]) == sorted(keys)
    assert sum(result["share"].values()) == pytest.approx(100.0, abs=1e-6)
    assert sum(result["part_s"].values()) == pytest.approx(result["median_s"], rel=1e-6)  # one step
    for key in keys:
        assert result["part_s"][key] >= 0, key
    for key in ("generator", "vgg", "critic", "penalty", "optimisers"):
        assert result["part_s"][key] > 0, key

    rows = table_rows(out)
    assert rows["0.0625"][:8] == [
        "0.0625",
        "0.27 M",
        "0.09 M",
        "fp32",
        "2",
        "1",
        f"{result['median_s']:.3f}",
        "1.00x",
    ]
    shares = []
    for _, label in (*bench.PARTS, bench.REST):
        seconds, share = rows[label]
        assert share.endswith("%")
        shares.append(float(share.rstrip("%")))
    assert sum(shares) == pytest.approx(100.0, abs=0.5)  # each share is rounded to 0.1
    assert rows["**whole step (mean)**"][1] == "100%"
    assert "torch threads: 1" in out and "random weights" in out

    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nkept text\n")
    region = re.search(r"<!-- train_step:start -->\n(.*)\n<!-- train_step:end -->", text, re.S)
    assert region is not None
    assert "## Training step (CPU)" in region.group(1)
    assert table_rows(region.group(1)) == rows


def test_timing_the_trainer_step_changes_nothing_it_computes(bench):
    """The benchmark times the trainer's own step; with or without the timer it computes the same."""
    config = bench.benchmark_config(width=0.0625, size=128, batch_size=2)
    image, known_mask = bench.random_batch(2, 128, seed=3)
    batch = {"image": image, "known_mask": known_mask}
    (timed, settings), (plain, _) = bench.build_step(config), bench.build_step(config)
    fresh = {k: v.clone() for k, v in plain.generator.state_dict().items()}

    timer = bench.PartTimer()
    timed_values = train_step(timed, batch, settings, step_generator(0, 5, 0, image.device), timer.part)
    plain_values = train_step(plain, batch, settings, step_generator(0, 5, 0, image.device))

    assert timed_values.keys() == plain_values.keys() >= {"d_loss", "gradient_penalty", "g_total", "hole"}
    for name, value in plain_values.items():
        assert torch.equal(timed_values[name], value), name
    for module in ("generator", "critic"):
        timed_state = getattr(timed, module).state_dict()
        for key, value in getattr(plain, module).state_dict().items():
            assert torch.equal(timed_state[key], value), f"{module}.{key}"
    assert (timed.step, plain.step) == (1, 1)
    assert any(not torch.equal(fresh[k], v) for k, v in timed.generator.state_dict().items())
    assert all(seconds > 0 for seconds in timer.seconds.values()), timer.seconds


def test_precisions_are_measured_interleaved(bench):
    results = bench.measure(0.0625, 128, 2, 2, precisions=("fp32", "bf16"))
    assert [r["precision"] for r in results] == ["fp32", "bf16"]
    assert all(len(r["step_times"]) == 2 and r["part_s"]["vgg"] > 0 for r in results)
    text = bench.markdown(results)
    assert "| fp32 |" in text and "| bf16 |" in text and "width 0.0625 bf16: s/step" in text
