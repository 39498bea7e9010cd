"""Class-uniform sampling (datasets/class_uniform.py, datasets/class_index.py): index, cache invalidation, centred
crops, measured rates."""

from __future__ import annotations

import os
import shutil

import albumentations as A
import numpy as np
import pytest
import torch

from datasets.class_index import CACHE_DIR, ClassPixelIndex, load_or_build_index
from datasets.class_uniform import CentredCrop, ClassUniformPlan, enable_class_uniform, with_centred_crop
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
    again, path = load_or_build_index(dm.train_set, 64, name="camvid")
    assert path == files[0] and np.array_equal(again.points, dm.train_plan.index.points)
    monkeypatch.undo()

    label = dm.train_set.pairs[3][1]
    st = os.stat(label)
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a label changed: another key
    rebuilt, new_path = load_or_build_index(dm.train_set, 64, name="camvid")
    assert new_path != files[0] and not files[0].exists()  # stale index of the split removed
    assert np.array_equal(rebuilt.counts, dm.train_plan.index.counts)
    _, other = load_or_build_index(dm.train_set, 32, name="camvid")  # another setting: another key
    assert other != new_path


def test_read_only_data_folder_uses_the_fallback(camvid_copy, tmp_path):
    root = camvid_copy / "camvid"
    os.chmod(root, 0o555)
    try:
        dm, _ = _camvid(camvid_copy, logdir=tmp_path / "logs")
        _, path = load_or_build_index(dm.train_set, 64, tmp_path / "logs" / "cache", "camvid")
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
    with pytest.raises(ValueError, match=r"^class_uniform.pct=1.5: expected a fraction in \[0, 1\]"):
        enable_class_uniform(None, {"pct": 1.5, "points_per_class": 64})  # checked before the data is read


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


def _uniform_cfg(root, config, logdir="/nonexistent-logdir"):
    return compose_cfg(
        [
            f"dataset={config}",
            f"environment.data_root={root}",
            "class_uniform.pct=0.5",
            "dataset.crop_size=[32,32]",
            f"LOGDIR={logdir}",
        ]
    )


@pytest.fixture()
def voc_prepared(tmp_path):
    """Generated PASCAL-Context tree (2 train images, 40x60), prepared: one data root for the 59 and 60 configs."""
    from datasets.prepare import main as prepare_main
    from tests.datasets.trees import voc_context_tree

    root = voc_context_tree(tmp_path)
    assert prepare_main(["voc_context", str(root)]) == 0
    return root


def _voc_counts(ds):
    return np.stack([np.bincount((lab := ds.load_label(p))[lab != 255], minlength=ds.num_classes) for _, p in ds.pairs])


def test_sibling_configs_sharing_a_root_keep_their_own_index(voc_prepared, monkeypatch):
    """voc2010_context (59 classes, background ignored) and voc2010_context_60 read the same label files."""
    sets = {}
    for config in ("voc2010_context", "voc2010_context_60", "voc2010_context"):
        dm = SegDataModule(_uniform_cfg(voc_prepared.parent, config))
        dm.setup("fit")
        sets[config] = dm
    files = sorted((voc_prepared / CACHE_DIR).glob("class_index_train_*.npz"))
    assert len(files) == 2  # one per config, neither removed the other's
    monkeypatch.setattr(ClassPixelIndex, "build", classmethod(lambda *a, **k: pytest.fail("index rebuilt")))
    paths = set()
    for config, k in (("voc2010_context", 59), ("voc2010_context_60", 60)):
        ds = sets[config].train_set
        index, path = load_or_build_index(ds, 64, name=config)
        paths.add(path)
        assert index.counts.shape == (2, k) and np.array_equal(index.counts, _voc_counts(ds))
    assert paths == set(files)


def test_cityscapes_configs_sharing_a_root_keep_their_own_index(shared_data, tmp_path, monkeypatch):
    from tests.datasets.trees import cityscapes_tree

    cs = cityscapes_tree(shared_data, tmp_path)
    configs = ("cityscapes", "cityscapes_coarse", "cityscapes_fine_coarse")
    sets = {}
    for config in configs:
        dm = SegDataModule(_uniform_cfg(tmp_path, config))
        dm.setup("fit")
        sets[config] = dm.train_set
    assert len(list((cs / CACHE_DIR).glob("class_index_train_*.npz"))) == 3
    monkeypatch.setattr(ClassPixelIndex, "build", classmethod(lambda *a, **k: pytest.fail("index rebuilt")))
    for config, n in zip(configs, (1, 2, 2), strict=True):  # fine train; coarse train + train_extra; fine + extra
        index, _ = load_or_build_index(sets[config], 64, name=config)
        assert len(index.counts) == len(sets[config].pairs) == n


@pytest.mark.parametrize("event", ["sibling config written", "same key rewritten", "file deleted"])
def test_a_concurrent_writer_never_breaks_a_reader(voc_prepared, monkeypatch, event):
    """What another process may do to the cache between this reader's lookup and its read, done at that moment."""
    dm = {c: SegDataModule(_uniform_cfg(voc_prepared.parent, c)) for c in ("voc2010_context", "voc2010_context_60")}
    for m in dm.values():
        m.setup("fit")
    ds, sibling = dm["voc2010_context"].train_set, dm["voc2010_context_60"].train_set
    for f in (voc_prepared / CACHE_DIR).glob("*.npz"):
        f.unlink()
    expected, path = load_or_build_index(ds, 64, name="voc2010_context")
    original, fired = ClassPixelIndex.load.__func__, []

    def load_during_another_write(cls, p):
        if not fired:
            fired.append(p)
            if event == "sibling config written":
                load_or_build_index(sibling, 64, name="voc2010_context_60")
            elif event == "same key rewritten":
                with np.load(p) as z:  # the reader holds the file open while the writer replaces it
                    expected.save(p)
                    return cls(counts=z["counts"], start=z["start"], num=z["num"], points=z["points"])
            else:
                p.unlink()
        return original(cls, p)

    monkeypatch.setattr(ClassPixelIndex, "load", classmethod(load_during_another_write))
    index, got = load_or_build_index(ds, 64, name="voc2010_context")
    assert fired == [path] and got == path and path.is_file()
    assert np.array_equal(index.counts, expected.counts) and np.array_equal(index.points, expected.points)


def test_a_label_table_is_part_of_the_key(tmp_path):
    """FolderDataset's label_map (a dict) changes the labels, so it changes the index file; the same config name."""
    from datasets.folder import FolderDataset
    from tests.datasets.trees import folder_tree

    root = folder_tree(tmp_path, n=2, num_classes=3)
    plain = FolderDataset(root, "train", num_classes=3)
    swapped = FolderDataset(root, "train", num_classes=3, label_map={0: 2, 1: 1, 2: 0})
    a, pa = load_or_build_index(plain, 64, name="folder")
    b, pb = load_or_build_index(swapped, 64, name="folder")
    assert pa != pb and pa.is_file() and pb.is_file()
    assert np.array_equal(b.counts, a.counts[:, ::-1])  # classes 0 and 2 swapped
