"""models.checkpoint: one reader for every checkpoint container."""

import pytest
import torch

from models.checkpoint import load_weights, read_state_dict


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: s,
        lambda s: {"state_dict": s, "epoch": 3},
        lambda s: {"model": s},
        lambda s: {"model_state_dict": s, "mean_iu": 0.5},
    ],
)
def test_containers_are_unwrapped_to_tensors(tmp_path, wrap):
    state = {"a.weight": torch.ones(2), "b.bias": torch.zeros(1)}
    torch.save(wrap(state), tmp_path / "c.pth")
    out = read_state_dict(tmp_path / "c.pth")
    assert out.keys() == state.keys() and torch.equal(out["a.weight"], state["a.weight"])


@pytest.mark.parametrize(
    "stored,expected",
    [
        ({"state_dict": {"model.net.w": torch.ones(1), "criterion.weight": torch.ones(1)}}, {"net.w"}),  # Lightning
        ({"module.net.w": torch.ones(1)}, {"net.w"}),  # DataParallel / DistributedDataParallel
        ({"model": {"module.net.w": torch.ones(1)}}, {"net.w"}),
        ({"net.w": torch.ones(1)}, {"net.w"}),
    ],
)
def test_prefixes_are_stripped_and_other_keys_dropped(tmp_path, stored, expected):
    torch.save(stored, tmp_path / "c.pt")
    assert set(read_state_dict(tmp_path / "c.pt")) == expected


def test_strict_load_names_the_file_and_keys(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1))
    torch.save({"0.weight": torch.ones(2, 3, 1, 1)}, tmp_path / "short.pth")
    with pytest.raises(ValueError, match=r"short.pth does not fit Sequential: 1 missing keys \['0.bias'\]"):
        load_weights(model, tmp_path / "short.pth")
    torch.save({"0.weight": torch.ones(2, 3, 1, 1), "0.bias": torch.full((2,), 3.0)}, tmp_path / "ok.pth")
    assert load_weights(model, tmp_path / "ok.pth")["loaded_by"] == "state_dict"
    assert torch.equal(model[0].bias, torch.full((2,), 3.0))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth cannot be read"):
        read_state_dict(tmp_path / "junk.pth")


def test_missing_and_empty_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_state_dict(tmp_path / "nope.pth")
    torch.save({"epoch": 1}, tmp_path / "empty.pth")
    with pytest.raises(ValueError, match="empty.pth: no tensors"):
        read_state_dict(tmp_path / "empty.pth")
