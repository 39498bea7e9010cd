"""Reproducible and resumable randomness: everything random in epoch ``e`` is a function of ``(seed, e)``.

Why: Lightning checkpoints (``last.ckpt``) restore weights, optimizer, scheduler and loop counters but not
the RNG streams, and albumentations 2.x draws from its own generators (seeded from OS entropy unless told
otherwise), so ``seed_everything`` alone makes neither two runs nor a resumed run repeat. Here:

* :class:`EpochSeededSampler` — the train order. A :class:`torch.utils.data.DistributedSampler`
  (so Lightning keeps it under DDP and calls ``set_epoch``) whose permutation comes from ``seed + epoch``
  (PyTorch's own rule) and which yields ``(seed, epoch, index)`` keys.
* :class:`SeededTransformDataset` — re-seeds the dataset's albumentations pipeline for every sample with
  ``SeedSequence([seed, epoch, index])``: augmentation is independent of workers, their persistence,
  the rank and of resuming.
* :class:`EpochSeedCallback` — re-seeds python/numpy/torch at each train epoch start with ``seed + epoch``
  (dropout, stochastic depth).

A run resumed from the end-of-epoch ``last.ckpt`` therefore replays the interrupted epoch exactly; with
``deterministic=true`` (``torch.use_deterministic_algorithms``) two CPU runs are bit-identical
(tests/training/test_resume.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytorch_lightning as pl
from lightning_fabric.utilities.seed import seed_everything
from torch.utils.data import Dataset, DistributedSampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """32-bit seed of one sample's augmentation, from numpy's ``SeedSequence([seed, epoch, index])``."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1)[0])


class EpochSeededSampler(DistributedSampler):
    """Shuffled (or ordered) indices of rank ``rank`` of ``num_replicas``, permuted by ``seed + epoch``.

    Yields ``(seed, epoch, index)`` tuples for :class:`SeededTransformDataset`. ``num_replicas=1, rank=0`` works
    without a process group. ``drop_last=True`` drops the tail so every rank gets the same number of samples.
    """

    def __init__(
        self,
        dataset,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        epoch: int = 0,
    ):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        epoch = self.epoch
        return ((self.seed, epoch, int(i)) for i in super().__iter__())


class SeededTransformDataset(Dataset):
    """Wraps a dataset whose ``transform`` has ``set_random_seed`` (albumentations >= 2 ``Compose``).

    ``ds[(seed, epoch, index)]`` seeds the transform with :func:`sample_seed` then returns ``base[index]``, or
    ``base[plan.item(seed, epoch, index)]`` with a ``plan`` (class-uniform sampling,
    :class:`datasets.class_uniform.ClassUniformPlan`); ``ds[index]`` is ``base[index]`` unchanged. ``len`` and
    attributes are those of ``base``.
    """

    def __init__(self, base: Dataset, plan=None):
        self.base = base
        self.plan = plan

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name):
        if name in ("base", "plan"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            seed, epoch, index = key
            transform = getattr(self.base, "transform", None)
            if transform is not None and hasattr(transform, "set_random_seed"):
                transform.set_random_seed(sample_seed(seed, epoch, index))
            key = index if self.plan is None else self.plan.item(seed, epoch, index)
        return self.base[key]


class EpochSeedCallback(pl.Callback):
    """Seeds python ``random``, numpy and torch with ``seed + epoch`` at every train epoch start."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seed_everything(self.seed + trainer.current_epoch, workers=True, verbose=False)
