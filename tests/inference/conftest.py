"""Fixtures: a tiny CamVid copy (96x128 frames) and tiny training runs on it (main.py in-process, CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO, TINY_RUN, call_hydra_cli

SPLITS = {"train": 4, "val": 3}
#: class names of config/dataset/camvid.yaml, in label order
CAMVID_CLASSES = [
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
]


@pytest.fixture(scope="session")
def tiny_camvid(tmp_path_factory) -> Path:
    """``<tmp>/camvid`` with 4 train / 3 val frames of the embedded subset, resized to 128x96 (W x H)."""
    root = tmp_path_factory.mktemp("data")
    src = REPO / "data" / "camvid"
    for split, n in SPLITS.items():
        for sub, resample in ((split, Image.BILINEAR), (f"{split}annot", Image.NEAREST)):
            (root / "camvid" / sub).mkdir(parents=True)
            for f in sorted((src / sub).glob("*.png"))[:n]:
                Image.open(f).resize((128, 96), resample).save(root / "camvid" / sub / f.name)
    return root


def train_tiny(data_root: Path, logdir: Path, *extra: str) -> Path:
    """Train 1 epoch of TINY_RUN on ``data_root`` (every val image seen; in-process main.py) and return the run
    folder."""
    args = [*TINY_RUN, "trainer.limit_val_batches=null", f"environment.data_root={data_root}", f"LOGDIR={logdir}"]
    assert call_hydra_cli("main", [*args, *extra]) == 0
    runs = sorted(logdir.rglob("hparams.yaml"))
    assert len(runs) == 1, runs
    return runs[0].parent


@pytest.fixture(scope="session")
def tiny_run(tiny_camvid, tmp_path_factory) -> Path:
    """A float32 Unet-r18 run folder (1 epoch, 2 train batches, the 3 val frames)."""
    return train_tiny(tiny_camvid, tmp_path_factory.mktemp("logs"))
