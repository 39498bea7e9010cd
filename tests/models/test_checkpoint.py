"""models.checkpoint: one reader for every checkpoint container."""

import pytest
import torch

from models.checkpoint import model_state, read_state_dict


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


def test_lightning_model_prefix_is_stripped_and_other_keys_dropped():
    assert set(model_state({"model.net.w": torch.ones(1), "criterion.weight": torch.ones(1)})) == {"net.w"}
    assert set(model_state({"net.w": torch.ones(1)})) == {"net.w"}


def test_missing_and_empty_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_state_dict(tmp_path / "nope.pth")
    torch.save({"epoch": 1}, tmp_path / "empty.pth")
    with pytest.raises(ValueError, match="empty.pth: no tensors"):
        read_state_dict(tmp_path / "empty.pth")
