"""The shared base class on a tiny generated folder: samples, label mapping and every bad-input error."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from datasets import DatasetError, FolderDataset, build_dataset
from datasets.base import CorruptFileError, LayoutError, lookup
from datasets.transforms import build_transforms
from tests.conftest import compose_cfg
from tests.datasets.trees import folder_tree, random_image


@pytest.fixture
def folder(tmp_path):
    return folder_tree(tmp_path)


def _ds(root, split="train", **kw):
    kw.setdefault("num_classes", 3)
    return FolderDataset(root, split, **kw)


def test_folder_sample_follows_the_contract(folder):
    ds = _ds(folder)
    assert len(ds) == 2
    s = ds[1]
    assert set(s) == {"image", "mask", "name"} and s["name"] == "img1"
    assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 48, 64)
    expected = np.arange(48 * 64).reshape(48, 64) % 3
    expected[0, :5] = 255
    assert s["mask"].dtype == torch.int64 and torch.equal(s["mask"], torch.from_numpy(expected))


def test_folder_config_builds_normalised_samples(folder):
    cfg = compose_cfg(
        ["dataset=folder", f"dataset.root={folder}", "dataset.num_classes=3", "dataset.crop_size=[32,32]"]
    )
    t = build_transforms(cfg.augmentation.train, cfg.dataset.mean, cfg.dataset.std)
    s = build_dataset(cfg.dataset, "train", t)[0]
    assert s["image"].dtype == torch.float32 and s["image"].shape == (3, 32, 32)
    assert s["mask"].shape == (32, 32) and set(s["mask"].unique().tolist()) <= {0, 1, 2, 255}


def test_folder_label_map_sends_unmapped_values_to_ignore(folder):
    ds = _ds(folder, label_map={0: 2, 2: 0}, num_classes=3)
    m = ds[0]["mask"].numpy()
    raw = np.asarray(Image.open(folder / "masks" / "train" / "img0.png")).astype(int)
    assert (m[raw == 0] == 2).all() and (m[raw == 2] == 0).all() and (m[raw == 1] == 255).all()
    assert (m[raw == 255] == 255).all()


def test_lookup_table_and_unknown_values():
    label = np.array([[0, 1, 7], [300, -1, 1]])
    assert lookup(label, {0: 5, 1: 6}).tolist() == [[5, 6, -1], [-1, -1, 6]]
    assert lookup(label, np.array([9, 8]), unknown=255).tolist() == [[9, 8, 255], [255, 255, 8]]


def test_reduce_zero_label(folder):
    ds = _ds(folder, reduce_zero_label=True, num_classes=2)
    raw = np.asarray(Image.open(folder / "masks" / "train" / "img0.png")).astype(int)
    m = ds[0]["mask"].numpy()
    assert (m[raw == 0] == 255).all() and (m[raw == 1] == 0).all() and (m[raw == 2] == 1).all()


def test_missing_root_shows_the_expected_layout(tmp_path):
    with pytest.raises(
        DatasetError, match=r"data root .*nowhere does not exist; expected layout:\nroot/\n  images/train"
    ):
        _ds(tmp_path / "nowhere")


def test_missing_split_folder_is_named(folder):
    with pytest.raises(DatasetError, match=r"missing split folder .*images/test; expected layout"):
        _ds(folder, "test")


def test_unknown_split_lists_the_valid_ones(folder):
    with pytest.raises(DatasetError, match=r"unknown split 'training'; valid splits: train, val, test"):
        _ds(folder, "training")


def test_image_without_label_names_both_paths(folder):
    random_image(folder / "images" / "train" / "lonely.png", 48, 64)
    with pytest.raises(
        DatasetError, match=r"image .*images/train/lonely.png has no label: expected .*masks/train/lonely.png"
    ):
        _ds(folder)


def test_label_value_outside_the_class_set_names_file_and_value(folder):
    bad = np.zeros((48, 64), np.uint8)
    bad[3, 3] = 7
    Image.fromarray(bad).save(folder / "masks" / "train" / "img1.png")
    ds = _ds(folder)
    with pytest.raises(DatasetError, match=r"label .*masks/train/img1.png has values \[7\] outside the 3 classes"):
        ds[1]


def test_size_mismatch_names_both_files_and_sizes(folder):
    Image.fromarray(np.zeros((40, 64), np.uint8)).save(folder / "masks" / "train" / "img0.png")
    with pytest.raises(DatasetError, match=r"size mismatch: image .*img0.png is 64x48 but label .*img0.png is 64x40"):
        _ds(folder)[0]


def test_colour_label_is_rejected(folder):
    random_image(folder / "masks" / "train" / "img0.png", 48, 64)
    with pytest.raises(DatasetError, match=r"has 3 channels; expected a single-channel label map"):
        _ds(folder)[0]


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_truncated_image_is_named(folder):
    _truncate(folder / "images" / "train" / "img0.png")
    with pytest.raises(CorruptFileError, match=r"cannot read image .*images/train/img0.png"):
        _ds(folder)[0]


def test_skip_corrupt_returns_the_next_sample_and_counts(folder, caplog):
    _truncate(folder / "images" / "train" / "img0.png")
    ds = _ds(folder, skip_corrupt=True)
    with caplog.at_level(logging.WARNING):
        s0, s1 = ds[0], ds[1]
    assert s0["name"] == "img1" and s0["skipped"] == 1 and s1["skipped"] == 0
    assert "img0.png" in caplog.text
    batch = torch.utils.data.default_collate([s0, s1])
    assert batch["skipped"].sum().item() == 1  # what training logs as data/skipped_corrupt


def test_every_file_corrupt_is_an_error(folder):
    for i in range(2):
        _truncate(folder / "images" / "train" / f"img{i}.png")
    with pytest.raises(DatasetError, match="every file of split 'train' is corrupt"):
        _ds(folder, skip_corrupt=True)[0]


def test_empty_split_is_an_error(folder):
    for p in (folder / "images" / "val").iterdir():
        p.unlink()
    with pytest.raises(DatasetError, match="no images for split 'val'"):
        _ds(folder, "val")


def test_image_without_label_is_one_line(folder):
    random_image(folder / "images" / "train" / "lonely.png", 48, 64)
    with pytest.raises(DatasetError) as e:
        _ds(folder)
    assert "\n" not in str(e.value) and not isinstance(e.value, LayoutError)
