"""Every dataset config carries the keys the other parts rely on, consistently sized."""

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONFIG_DIR, compose_cfg
from tests.datasets.trees import TREE_DATASETS

DATASETS = sorted(p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml"))
KEYS = [
    "name",
    "_target_",
    "root",
    "num_classes",
    "ignore_index",
    "class_names",
    "palette",
    "mean",
    "std",
    "class_weights",
    "crop_size",
    "val_split",
    "test_split",
    "skip_corrupt",
    "test",
]


def test_every_dataset_is_listed():
    assert set(DATASETS) >= {"camvid", *TREE_DATASETS}


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_config_contract(name):
    cfg = compose_cfg([f"dataset={name}"])
    d = OmegaConf.to_container(cfg.dataset, resolve=True)
    assert all(k in d for k in KEYS), [k for k in KEYS if k not in d]
    k = d["num_classes"]
    assert d["name"] == name and d["ignore_index"] == 255
    assert len(d["class_names"]) == len(d["palette"]) == k and len(set(d["class_names"])) == k
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in d["palette"])
    assert len(d["mean"]) == len(d["std"]) == 3 and all(0 < s < 1 for s in d["std"])
    assert d["class_weights"] is None or len(d["class_weights"]) == k
    assert len(d["crop_size"]) == 2
    t = d["test"]
    assert t["mode"] in ("whole", "slide") and t["scales"] and isinstance(t["flip"], bool)
    assert {"crop_size", "stride"} <= set(t)
    assert cfg.augmentation.train, "each dataset brings its default augmentation"
