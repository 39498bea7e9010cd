"""Class-uniform sampling (datasets/class_uniform.py): index, cache invalidation, centred crops, measured rates."""

from __future__ import annotations

import os
import shutil

import albumentations as A
import numpy as np
import pytest
import torch

from datasets.class_uniform import (
    CACHE_DIR,
    CentredCrop,
    ClassPixelIndex,
    ClassUniformPlan,
    load_or_build_index,
    with_centred_crop,
)
from tests.conftest import REPO, compose_cfg
from training.datamodule import SegDataModule
from training.determinism import SeededTransformDataset

RARE = {"SignSymbol": 6, "Pedestrian": 9, "Bicyclist": 10}


def _camvid(root, pct=0.5, logdir="/nonexistent-logdir"):
    """Train split of CamVid under ``root`` (a folder holding camvid/) with class-uniform sampling, 64x96 crops."""
    cfg = compose_cfg(
        [f"class_uniform.pct={pct}", f"environment.data_root={root}", "dataset.crop_size=[64,96]", f"LOGDIR={logdir}"]
    )
    dm = SegDataModule(cfg)
    dm.setup("fit")
    return dm, SeededTransformDataset(dm.train_set, plan=dm.train_plan)


@pytest.fixture()
def camvid_copy(tmp_path):
    """The embedded 24-image CamVid subset copied to a writable folder."""
    shutil.copytree(REPO / "data" / "camvid", tmp_path / "camvid", ignore=shutil.ignore_patterns(CACHE_DIR))
    return tmp_path


def test_index_matches_the_labels(camvid_copy):
    dm, _ = _camvid(camvid_copy)
    ds, index = dm.train_set, dm.train_plan.index
    for n in (0, 5, 23):
        label = ds.load_label(ds.pairs[n][1])
        assert np.array_equal(index.counts[n], np.bincount(label[label != 255], minlength=11))
        for c in np.flatnonzero(index.counts[n]):
            pts = index.points_of(n, c)
            assert len(pts) == min(64, index.counts[n, c])
            assert (label[pts[:, 1], pts[:, 0]] == c).all()  # every stored (x, y) is a pixel of class c
            assert len(np.unique(pts, axis=0)) == len(pts)


def test_cache_is_reused_then_invalidated_by_a_changed_label(camvid_copy, monkeypatch):
    dm, _ = _camvid(camvid_copy)
    files = list((camvid_copy / "camvid" / CACHE_DIR).glob("class_index_train_*.npz"))
    assert len(files) == 1  # next to the data (writable)

    def no_build(*a, **k):
        raise AssertionError("index rebuilt although the cache is valid")

    monkeypatch.setattr(ClassPixelIndex, "build", classmethod(no_build))
    again, path = load_or_build_index(dm.train_set, 64)
    assert path == files[0] and np.array_equal(again.points, dm.train_plan.index.points)
    monkeypatch.undo()

    label = dm.train_set.pairs[3][1]
    st = os.stat(label)
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a label changed: another key
    rebuilt, new_path = load_or_build_index(dm.train_set, 64)
    assert new_path != files[0] and not files[0].exists()  # stale index of the split removed
    assert np.array_equal(rebuilt.counts, dm.train_plan.index.counts)
    _, other = load_or_build_index(dm.train_set, 32)  # another setting: another key
    assert other != new_path


def test_read_only_data_folder_uses_the_fallback(camvid_copy, tmp_path):
    root = camvid_copy / "camvid"
    os.chmod(root, 0o555)
    try:
        dm, _ = _camvid(camvid_copy, logdir=tmp_path / "logs")
        _, path = load_or_build_index(dm.train_set, 64, tmp_path / "logs" / "cache")
    finally:
        os.chmod(root, 0o755)
    assert not (root / CACHE_DIR).exists()
    assert path.is_file() and (tmp_path / "logs" / "cache") in path.parents


def test_centred_crop_puts_the_keypoint_pixel_at_the_centre():
    image = np.zeros((40, 30, 3), np.uint8)
    mask = np.zeros((40, 30), np.uint8)
    mask[31, 7] = 9  # (x=7, y=31)
    pipe = with_centred_crop(
        A.Compose([A.PadIfNeeded(60, 50, border_mode=0, fill_mask=255), A.RandomCrop(20, 16), A.HorizontalFlip(p=0)])
    )
    assert isinstance(pipe.transforms[1], CentredCrop)
    out = pipe(image=image, mask=mask, keypoints=np.array([[7.5, 31.5]], np.float32))
    assert out["mask"].shape == (20, 16) and out["mask"][10, 8] == 9
    # near the border the window is shifted to stay inside: (x=0, y=0) of the padded 60x50 image
    out = pipe(image=image, mask=mask, keypoints=np.array([[0.5, 0.5]], np.float32))
    assert (out["mask"][:10, :10] == 255).all()
    with pytest.raises(ValueError, match=r"exactly one albumentations.RandomCrop .* holds \['HorizontalFlip'\]"):
        with_centred_crop(A.Compose([A.HorizontalFlip()]))


def test_plan_is_exact_per_epoch_and_deterministic():
    counts = np.zeros((100, 4), np.int64)
    counts[:, 0] = 5
    counts[:3, 3] = 1  # class 3 in 3 images, class 1 and 2 absent from the split
    index = ClassPixelIndex(counts, np.zeros_like(counts), (counts > 0).astype(np.int64), np.zeros((1, 2), np.int32))
    plan = ClassUniformPlan(index, 0.3)
    sc = plan.slot_classes(7, 0)
    assert (sc >= 0).sum() == 30 and sorted(np.bincount(sc[sc >= 0]).tolist()) == [0, 0, 15, 15]
    assert np.array_equal(ClassUniformPlan(index, 0.3).slot_classes(7, 0), sc)
    assert not np.array_equal(plan.slot_classes(7, 1), sc)
    slot = int(np.flatnonzero(sc == 3)[0])
    assert plan.item(7, 0, slot)[0] in (0, 1, 2)  # an image holding class 3
    with pytest.raises(ValueError, match=r"class_uniform.pct=1.5: expected a fraction in \[0, 1\]"):
        ClassUniformPlan(index, 1.5)


def test_rare_camvid_classes_in_crops_at_the_configured_rate(shared_data, tmp_path):
    """Full CamVid train (367 images), pct = 0.5, one epoch of 64x96 crops (random scale 0.5-2, flip).

    Configured: every class is the centre of p / C = 0.5 / 11 = 4.55 % of the crops (16 or 17 of 367).
    Measured per class: crops whose 3x3 centre window holds the class among its own class-uniform crops, and crops
    holding it anywhere. Tolerance: the centre misses only where scaling by < 1 with nearest-neighbour label
    resampling erases thin or tiny objects: centred share within 1.5 percentage points of p / C, every class-uniform
    crop holds its class somewhere (>= 97 %).
    """
    p = 0.5
    dm, ds = _camvid(shared_data, pct=p, logdir=tmp_path)
    n, plan = len(ds), dm.train_plan
    sc = plan.slot_classes(42, 0)
    assert n == 367 and (sc >= 0).sum() == round(p * n) == 184
    assert set(np.bincount(sc[sc >= 0], minlength=11).tolist()) == {16, 17}
    centred, anywhere = np.zeros(11), np.zeros(11)
    for slot in np.flatnonzero(sc >= 0):
        c = int(sc[slot])
        m = ds[(42, 0, int(slot))]["mask"]
        h, w = m.shape
        centred[c] += bool((m[h // 2 - 1 : h // 2 + 2, w // 2 - 1 : w // 2 + 2] == c).any())
        anywhere[c] += bool((m == c).any())
    slots = np.bincount(sc[sc >= 0], minlength=11)
    assert (np.abs(centred / n - p / 11) <= 0.015).all(), centred / n
    assert anywhere.sum() / slots.sum() >= 0.97
    for c in RARE.values():
        assert anywhere[c] == slots[c] and centred[c] / n >= p / 11 - 0.015
    # same (seed, epoch, slot): the same crop
    slot = int(np.flatnonzero(sc == RARE["Bicyclist"])[0])
    assert torch.equal(ds[(42, 0, slot)]["image"], ds[(42, 0, slot)]["image"])
