"""The backend choice (lbam.inference.backends): measured, within tolerance, cached per machine."""

import importlib.util
import time

import numpy as np
import pytest
import torch
from PIL import Image

from lbam.cli.main import main
from lbam.inference import backends
from lbam.inference.backends import BackendGenerator, Engine, load_verdict, measure
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import save_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LBAMGenerator(width=1 / 16).eval()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LBAM_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _engine(monkeypatch, name, run, fake_build=None):
    """Register a stand-in engine ``name`` whose runner is ``run(model, image, known_mask)``."""

    def build(model, dtype):
        return lambda image, known_mask: run(model, image, known_mask)

    monkeypatch.setitem(backends.ENGINES, name, Engine(fake_build or build))


def _slow(model, image, known_mask):
    time.sleep(0.05)
    return model(image, known_mask)


def _off(model, image, known_mask):
    return (model(image, known_mask) + 1e-3).clamp(0, 1)


def _make_fast(model):
    """An engine faster than eager and exact: it answers the probe input's output from a memo."""
    memo = {}

    def run(model, image, known_mask):
        key = (image.shape, float(image.sum()))
        if key not in memo:
            memo[key] = model(image, known_mask)
        return memo[key]

    return run


def test_a_slower_backend_is_never_chosen(model, monkeypatch):
    _engine(monkeypatch, "slow", _slow)
    verdict = measure(model, ["eager", "slow"], (256, 256), rounds=3)
    assert verdict.backend == "eager"
    assert verdict.seconds["slow"] > verdict.seconds["eager"]
    assert verdict.errors["slow"] == "max abs 0.0e+00"


def test_a_backend_outside_tolerance_or_broken_is_never_chosen(model, monkeypatch):
    _engine(monkeypatch, "off", _off)

    def broken(model, dtype):
        raise RuntimeError("no such engine here")

    _engine(monkeypatch, "broken", None, fake_build=broken)
    _engine(monkeypatch, "fast", _make_fast(model))
    verdict = measure(model, ["eager", "off", "broken", "fast"], (256, 256), rounds=3)
    assert verdict.backend == "fast"  # the only one both exact and faster
    assert "off" not in verdict.seconds and verdict.errors["off"].startswith("max abs 1.0e-03")
    assert "broken" not in verdict.seconds and "no such engine here" in verdict.errors["broken"]


def test_the_verdict_is_cached_per_machine_and_reused(model, monkeypatch, cache):
    _engine(monkeypatch, "fast", _make_fast(model))
    monkeypatch.setattr(backends, "candidates", lambda device, bf16: ["eager", "fast"])
    calls = []
    real = backends.measure
    monkeypatch.setattr(backends, "measure", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    image, known = torch.rand(1, 3, 256, 256), torch.ones(1, 1, 256, 256)

    first = BackendGenerator(model, "auto")
    with torch.inference_mode():
        out = first(image, known)
    assert first.chosen == {256: "fast"} and calls == [(256, 256)]
    assert torch.allclose(out, model(image, known))
    assert (cache / "backends.json").is_file()

    second = BackendGenerator(model, "auto")  # a new process would do the same: read, not measure
    assert second.backend_for(256, 256) == "fast" and calls == [(256, 256)]
    assert second.backend_for(512, 384) == "fast" and calls == [(256, 256), (512, 512)]  # the bucket's square

    monkeypatch.setattr(backends, "machine_key", lambda device: "another CPU; AVX2; 2 threads")
    third = BackendGenerator(model, "auto")
    assert third.backend_for(256, 256) == "fast" and len(calls) == 3  # measured again there


def test_without_measuring_an_unmeasured_size_runs_eager(model, monkeypatch):
    monkeypatch.setattr(backends, "measure", lambda *a, **k: pytest.fail("measured"))
    single = BackendGenerator(model, "auto", measure_new=False)
    assert single.backend_for(256, 256) == "eager"


def test_a_missing_extra_falls_back_with_one_line(model, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name))
    generator = BackendGenerator(model, "openvino")
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["lbam: note: openvino is not installed (pip install 'lbam[fast]'); running eager"]
    image, known = torch.rand(1, 3, 256, 256), torch.ones(1, 1, 256, 256)
    with torch.inference_mode():
        assert torch.equal(generator(image, known), model(image, known))
    assert "openvino" not in backends.candidates(torch.device("cpu"), bf16=False)


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_the_exported_engines_match_eager(model, name, cache):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is in the fast extra")
    generator = BackendGenerator(model, name)
    torch.manual_seed(1)
    image = torch.rand(2, 3, 256, 384)
    known = (torch.rand(2, 1, 256, 384) > 0.3).float()
    with torch.inference_mode():
        out, ref = generator(image, known), model(image, known)
        narrow = generator(image[..., :128], known[..., :128])  # one tile wide
        narrow_ref = model(image[..., :128], known[..., :128])
    assert float((out - ref).abs().max()) <= backends.FP32_TOLERANCE
    if name == "onnxruntime":  # the exported graph's smallest side is 2 tiles: eager runs that window
        assert torch.equal(narrow, narrow_ref)
    else:  # OpenVINO compiles the graph for the shape it gets, one tile wide included
        assert 0 < float((narrow - narrow_ref).abs().max()) <= backends.FP32_TOLERANCE
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1  # exported once into the cache


def test_cli_backend_flag_and_environment(model, tmp_path, monkeypatch, capsys, cache):
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is in the fast extra")
    weights = tmp_path / "tiny.safetensors"
    save_model(model, weights)
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((256, 320, 3)) * 255).astype(np.uint8)).save(photo)
    mask = np.zeros((256, 320), np.uint8)
    mask[100:160, 120:200] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    outputs = {}
    for backend in ("eager", "onnxruntime"):
        out = tmp_path / f"{backend}.png"
        argv = ["inpaint", str(photo), str(tmp_path / "mask.png"), "-o", str(out), "--model", str(weights)]
        assert main([*argv, "--backend", backend, "--dilate", "0", "--refine", "none"]) == 0
        outputs[backend] = np.asarray(Image.open(out), dtype=int)
    assert np.abs(outputs["eager"] - outputs["onnxruntime"]).max() <= 1  # float32 within 1e-5, then 8 bits
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1  # onnxruntime did run it

    monkeypatch.setenv("LBAM_BACKEND", "fastest")
    capsys.readouterr()
    assert main(["inpaint", str(photo), str(tmp_path / "mask.png"), "-o", str(tmp_path / "x.png")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LBAM_BACKEND must be one of auto, eager" in err[0]


def test_load_verdict_survives_a_damaged_file(cache):
    cache.mkdir(parents=True)
    (cache / "backends.json").write_text("{not json")
    assert load_verdict("anything") is None


def test_models_bench_prints_the_table_and_keeps_the_verdicts(model, tmp_path, monkeypatch, capsys, cache):
    weights = tmp_path / "tiny.safetensors"
    save_model(model, weights)
    _engine(monkeypatch, "fast", _make_fast(model))
    _engine(monkeypatch, "slow", _slow)
    monkeypatch.setattr(backends, "candidates", lambda device, bf16: ["eager", "slow", "fast"])
    assert main(["models", "--bench", "--model", str(weights), "--sizes", "256,300"]) == 0
    out = capsys.readouterr().out
    assert "256x256: chosen fast" in out and "384x384: chosen fast" in out  # 300 rounds up to the multiple
    slow_row = next(line for line in out.splitlines() if line.strip().startswith("slow"))
    assert float(slow_row.split()[2].rstrip("x")) > 1.0  # its ratio to eager
    reread = BackendGenerator(model, "auto", measure_new=False)
    assert reread.backend_for(256, 256) == "fast" and reread.backend_for(384, 384) == "fast"

    assert main(["models", "--bench", "--model", str(weights), "--sizes", "big"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sizes must be whole numbers" in err[0]


def test_a_verdict_with_bfloat16_candidates_serves_a_float32_only_run(model, monkeypatch):
    fast = _make_fast(model)
    monkeypatch.setitem(
        backends.ENGINES,
        "fast-bf16",
        Engine(lambda m, dtype: lambda image, known: fast(m, image, known), dtype=torch.bfloat16),
    )
    _engine(monkeypatch, "slow", _slow)
    monkeypatch.setattr(
        backends,
        "candidates",
        lambda device, bf16: ["eager", "slow", "fast-bf16"] if bf16 else ["eager", "slow"],
    )
    assert BackendGenerator(model, "auto", bf16=True).backend_for(256, 256) == "fast-bf16"
    monkeypatch.setattr(backends, "measure", lambda *a, **k: pytest.fail("measured again"))
    fp32_only = BackendGenerator(model, "auto", bf16=False, measure_new=False)
    assert fp32_only.backend_for(256, 256) == "eager"  # from the same verdict: slow is slower than eager


def test_the_server_names_the_backend_in_use(model):
    from lbam.inference.optimize import optimize
    from lbam.server.inpainting import backend_name, model_facts

    assert backend_name(model) == "eager"
    auto = BackendGenerator(model, "auto")
    assert backend_name(auto) == "auto"  # nothing chosen yet
    auto.chosen = {512: "onnxruntime", 256: "eager"}
    assert backend_name(auto) == "auto: eager at 256 px, onnxruntime at 512 px"
    assert backend_name(BackendGenerator(model, "inductor")) == "inductor"
    facts = model_facts(optimize(model, "fp32", compile=True), "tiny.safetensors", "cpu")
    assert facts["backend"] == "inductor" and facts["compiled"] is True


def test_a_served_model_never_measures_inside_a_request(model, monkeypatch):
    from lbam.cli.serve import _settled

    served = _settled(BackendGenerator(model, "auto"))
    monkeypatch.setattr(backends, "measure", lambda *a, **k: pytest.fail("measured in a request"))
    assert served.backend_for(512, 512) == "eager"


def test_a_folder_run_leaves_compiling_out_of_auto(model, monkeypatch):
    """Inductor compiles again in every process: a folder run's auto does not consider it, and a
    verdict that chose it (a server's) serves the folder run with the fastest of the others."""
    fast = _make_fast(model)
    compiling = Engine(lambda m, dtype: lambda i, k: fast(m, i, k), compiles_per_process=True)
    monkeypatch.setitem(backends.ENGINES, "inductor", compiling)
    _engine(monkeypatch, "slow", _slow)
    monkeypatch.setattr(backends, "candidates", lambda device, bf16: ["eager", "inductor", "slow"])
    server = BackendGenerator(model, "auto")
    assert server.backend_for(256, 256) == "inductor"
    folder = BackendGenerator(model, "auto", compiled=False)
    assert "inductor" not in folder.names and folder.backend_for(256, 256) == "eager"
