"""LightningDataModule building train/val loaders from the ``dataset`` and ``augmentation`` configs."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig
from torch.utils.data import DataLoader, DistributedSampler

from datasets import build_dataset
from datasets.class_uniform import enable_class_uniform
from datasets.transforms import build_transforms
from training.determinism import EpochSeededSampler, SeededTransformDataset


class UnpaddedDistributedSampler(DistributedSampler):
    """Rank ``r`` of ``W`` gets samples ``r, r + W, r + 2W, ...`` in order: every sample exactly once, no padding
    (ranks may differ by one sample), so validation metrics summed over ranks count each image once.

    A ``DistributedSampler`` subclass, so Lightning keeps it instead of inserting its own (padding) one; the
    behaviour of Lightning's internal ``UnrepeatedDistributedSampler`` without importing a private module.
    """

    def __init__(self, dataset, num_replicas: int, rank: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))
        self.total_size = len(dataset)

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))


class SegDataModule(pl.LightningDataModule):
    """Train loader (shuffled, ``drop_last``, ``batch_size``) and val loader (``val_batch_size``).

    Validation uses no padding sampler for metrics: under DDP Lightning's DistributedSampler is
    replaced by a non-padding one so that no sample is counted twice (see training/module.py).
    """

    def __init__(self, cfg: DictConfig):
        super().__init__()
        self.cfg = cfg
        self.train_set = self.val_set = self.train_plan = None

    def setup(self, stage: str | None = None) -> None:
        d = self.cfg.dataset
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = build_dataset(d, "train", build_transforms(self.cfg.augmentation.train, d.mean, d.std))
            cache = f"{self.cfg.LOGDIR}/cache"  # class_uniform.pct > 0: crops centred on rare classes too
            self.train_plan = enable_class_uniform(
                self.train_set, self.cfg.get("class_uniform"), fallback_dir=cache, name=d.get("name")
            )
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = build_dataset(
                d,
                d.get("val_split", "val"),
                build_transforms(self.cfg.augmentation.test, d.mean, d.std),
                require_labels=True,
            )

    def _loader(self, dataset, batch_size: int, shuffle: bool, drop_last: bool, sampler=None) -> DataLoader:
        workers = int(self.cfg.num_workers)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle if sampler is None else None,
            drop_last=drop_last,
            num_workers=workers,
            sampler=sampler,
            pin_memory=self.cfg.trainer.accelerator == "gpu",
            persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        bs = min(int(self.cfg.batch_size), len(self.train_set))
        # order and augmentation are functions of (seed, epoch): reproducible, resumable (training/determinism.py)
        trainer = getattr(self, "trainer", None)
        world, rank, epoch = (trainer.world_size, trainer.global_rank, trainer.current_epoch) if trainer else (1, 0, 0)
        sampler = EpochSeededSampler(
            self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=int(self.cfg.seed), epoch=epoch
        )
        train = SeededTransformDataset(self.train_set, plan=self.train_plan)
        return self._loader(train, bs, shuffle=True, drop_last=True, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        sampler = None
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            sampler = UnpaddedDistributedSampler(self.val_set, trainer.world_size, trainer.global_rank)
        return self._loader(self.val_set, int(self.cfg.val_batch_size), shuffle=False, drop_last=False, sampler=sampler)
