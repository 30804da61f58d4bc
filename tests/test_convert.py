"""`lbam convert` and `load_model`: the authors' layouts in, clear one-line errors for anything else."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from lbam.cli.main import main
from lbam.errors import LbamError
from lbam.model.lbam import LBAMGenerator
from lbam.model.loading import load_model, save_model
from lbam.model.official import convert_official_state_dict, lbam_to_official_key


def official_state_dict(model: LBAMGenerator) -> dict[str, torch.Tensor]:
    """Our model's weights under the authors' names (BN entries in their older layout too)."""
    return {lbam_to_official_key(k): v.clone() for k, v in model.state_dict().items()}


def sample(height=128, width=128):
    g = torch.Generator().manual_seed(3)
    return torch.rand(1, 3, height, width, generator=g), (
        torch.rand(1, 1, height, width, generator=g) > 0.4
    ).float()


def same_output(a, b):
    image, known = sample()
    with torch.no_grad():
        return torch.equal(a.eval()(image, known), b.eval()(image, known))


def test_released_layout_with_module_prefix(tmp_path):
    model = LBAMGenerator(width=0.125)
    state = {f"module.{k}": v for k, v in official_state_dict(model).items()}
    torch.save(state, tmp_path / "g.pth")
    assert main(["convert", str(tmp_path / "g.pth"), str(tmp_path / "g.safetensors")]) == 0
    loaded = load_model(tmp_path / "g.safetensors")
    assert loaded.config.variant == "released" and loaded.config.width == 0.125
    assert same_output(loaded, model)
    assert not loaded.training


def test_batch_norm_layout_becomes_paper_variant(tmp_path):
    model = LBAMGenerator(variant="paper", width=0.125, last_activation="abs_tanh")
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = official_state_dict(model)
    assert "ec2.bn.running_var" in state and "dc1.bn.weight" in state
    torch.save(state, tmp_path / "old.pth")
    out = tmp_path / "old.safetensors"
    assert main(["convert", str(tmp_path / "old.pth"), str(out), "--last-activation", "abs_tanh"]) == 0
    loaded = load_model(out)
    assert loaded.config.variant == "paper" and loaded.config.last_activation == "abs_tanh"
    assert same_output(loaded, model)


def test_cuda_saved_checkpoint_loads_on_cpu(tmp_path):
    """A file whose tensors were saved on a GPU: storages tagged 'cuda:0' in the pickle."""
    model = LBAMGenerator(width=0.0625)
    state = official_state_dict(model)
    tagged = {t.untyped_storage().data_ptr() for t in state.values()}

    def tag_as_cuda(obj):
        if isinstance(obj, torch.storage.UntypedStorage) and obj.data_ptr() in tagged:
            return "cuda:0"
        return None

    torch.serialization.register_package(0, tag_as_cuda, lambda obj, location: None)
    try:
        torch.save(state, tmp_path / "gpu.pth")
    finally:
        torch.serialization._package_registry[:] = [
            entry for entry in torch.serialization._package_registry if entry[1] is not tag_as_cuda
        ]
    assert b"cuda:0" in (tmp_path / "gpu.pth").read_bytes()
    assert same_output(load_model(tmp_path / "gpu.pth"), model)


def test_half_precision_file_is_half_the_size(tmp_path):
    model = LBAMGenerator(width=0.25)
    full = save_model(model, tmp_path / "full.safetensors")
    half = save_model(model, tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    image, known = sample()
    with torch.no_grad():
        difference = (load_model(half)(image, known) - model.eval()(image, known)).abs().max()
    assert difference < 1e-2


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda s: s.pop("ec3.conv.maskConv.weight"),
            "missing key in LBAM checkpoint: 'ec3.conv.maskConv.weight'",
        ),
        (
            lambda s: s.__setitem__("ec8.conv.conv.weight", torch.zeros(1)),
            "unexpected key in LBAM checkpoint: 'ec8",
        ),
        (
            lambda s: s.__setitem__("extra.weight", torch.zeros(1)),
            "unexpected key in LBAM checkpoint: 'extra.weight'",
        ),
        (
            lambda s: s.__setitem__("dc3.conv.weight", torch.zeros(3, 3, 4, 4)),
            "key 'dc3.conv.weight' has shape",
        ),
    ],
)
def test_bad_official_keys_are_named(edit, message):
    state = official_state_dict(LBAMGenerator(width=0.0625))
    edit(state)
    with pytest.raises(LbamError, match=message.replace("[", r"\[").replace(".", r"\.")):
        convert_official_state_dict(state)


def write_text(path, text="not a checkpoint"):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d / "absent.pth", "not found"),
        (lambda d: write_text(d / "text.pth"), "cannot read checkpoint"),
        (lambda d: write_text(d / "text.safetensors"), "cannot read"),
    ],
)
def test_unreadable_checkpoints_give_one_line_errors(tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert main(["convert", str(path), str(tmp_path / "out.safetensors")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.safetensors").exists()
    with pytest.raises(LbamError, match=message):
        load_model(path)


def test_foreign_state_dict_is_rejected(tmp_path, capsys):
    torch.save(torch.nn.Linear(3, 4).state_dict(), tmp_path / "linear.pth")
    assert main(["convert", str(tmp_path / "linear.pth"), str(tmp_path / "o.safetensors")]) == 2
    assert "is not an LBAM generator checkpoint (first key 'weight')" in capsys.readouterr().err
    with pytest.raises(LbamError, match="not an LBAM generator checkpoint"):
        load_model(tmp_path / "linear.pth")


def test_foreign_safetensors_is_rejected(tmp_path):
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(LbamError, match="not an lbam generator"):
        load_model(tmp_path / "other.safetensors")


def test_pickled_objects_are_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(LbamError, match="cannot read checkpoint"):
        load_model(tmp_path / "evil.pth")


def test_convert_replaces_an_output_but_never_its_input(tmp_path, capsys):
    """The overwrite policy of every command: output files are replaced, inputs never."""
    torch.save(official_state_dict(LBAMGenerator(width=0.0625)), tmp_path / "g.pth")
    (tmp_path / "g.safetensors").write_text("an earlier conversion")
    assert main(["convert", str(tmp_path / "g.pth"), str(tmp_path / "g.safetensors")]) == 0
    assert load_model(tmp_path / "g.safetensors").config.width == 0.0625
    before = (tmp_path / "g.pth").read_bytes()
    assert main(["convert", str(tmp_path / "g.pth"), str(tmp_path / "g.pth")]) == 2
    assert (tmp_path / "g.pth").read_bytes() == before


def test_unknown_model_name_and_missing_named_model(tmp_path, monkeypatch):
    monkeypatch.setenv("LBAM_HOME", str(tmp_path))
    with pytest.raises(LbamError, match="neither a file, nor one of .*nor a weight file in"):
        load_model("no-such-model")
    with pytest.raises(LbamError, match=r"'lbam-psv'.*is not installed: put its file at"):
        load_model("lbam-psv")
    model = LBAMGenerator(width=0.0625)
    torch.save(official_state_dict(model), tmp_path / "lbam-psv.pth")
    assert same_output(load_model("lbam-psv"), model)
