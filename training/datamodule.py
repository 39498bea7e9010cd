"""LightningDataModule building train/val loaders from the ``dataset`` and ``augmentation`` configs."""
from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from datasets import build_dataset
from datasets.transforms import build_transforms


class SegDataModule(pl.LightningDataModule):
    """Train loader (shuffled, ``drop_last``, ``batch_size``) and val loader (``val_batch_size``).

    Validation uses no padding sampler for metrics: under DDP Lightning's DistributedSampler is
    replaced by a non-padding one so that no sample is counted twice (see training/module.py).
    """

    def __init__(self, cfg: DictConfig):
        super().__init__()
        self.cfg = cfg
        self.train_set = self.val_set = None

    def setup(self, stage: str | None = None) -> None:  # noqa: D102
        d = self.cfg.dataset
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = build_dataset(d, "train", build_transforms(self.cfg.augmentation.train, d.mean, d.std))
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = build_dataset(d, d.get("val_split", "val"),
                                         build_transforms(self.cfg.augmentation.test, d.mean, d.std))

    def _loader(self, dataset, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        workers = int(self.cfg.num_workers)
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, num_workers=workers,
                          pin_memory=self.cfg.trainer.accelerator == "gpu", persistent_workers=workers > 0)

    def train_dataloader(self) -> DataLoader:  # noqa: D102
        bs = min(int(self.cfg.batch_size), len(self.train_set))
        return self._loader(self.train_set, bs, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader(self.val_set, int(self.cfg.val_batch_size), shuffle=False, drop_last=False)
