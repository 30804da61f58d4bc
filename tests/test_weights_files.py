"""lbam.utils.weights: the one safe reader of foreign .pth files."""

import pytest
import torch

from lbam.errors import LbamError
from lbam.utils.weights import as_state_dict, load_pth


def test_reads_tensors_and_names_what_is_wrong(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pth")
    assert torch.equal(as_state_dict(load_pth(tmp_path / "ok.pth", "weights"), "ok.pth")["w"], torch.ones(2))
    with pytest.raises(LbamError, match=r"^FID weights not found: .*absent\.pth \(get it there\)$"):
        load_pth(tmp_path / "absent.pth", "FID weights", hint="get it there")
    with pytest.raises(LbamError, match="checkpoint is a folder, not a file"):
        load_pth(tmp_path, "checkpoint")
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(LbamError, match="expected a state_dict of the thing"):
        as_state_dict(load_pth(tmp_path / "list.pth", "weights"), "list.pth", contents="the thing")
