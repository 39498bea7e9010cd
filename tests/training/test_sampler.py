"""Validation sampler under DDP: every sample on exactly one rank, no padding (public torch API only)."""

from torch.utils.data import DistributedSampler

from training.datamodule import UnpaddedDistributedSampler


def test_every_sample_once_without_padding():
    data = list(range(7))
    ranks = [UnpaddedDistributedSampler(data, 3, r) for r in range(3)]
    assert [list(s) for s in ranks] == [[0, 3, 6], [1, 4], [2, 5]]
    assert [len(s) for s in ranks] == [3, 2, 2]
    assert all(isinstance(s, DistributedSampler) for s in ranks)  # Lightning keeps it as it is
