"""Label mapping on the real samples of ../shared/data: CamVid, Cityscapes (vs the shipped labelTrainIds), ADE20K."""

import shutil

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from PIL import Image

from datasets import ADE20K, CamVid, Cityscapes, DatasetError, build_dataset
from datasets.ade20k import read_object_info
from datasets.cityscapes import convert_label_ids, label_id_to_train_id
from datasets.prepare import main as prepare_main
from tests.conftest import compose_cfg
from tests.datasets.trees import CS_STEM, cityscapes_tree


# ----------------------------------------------------------------------------------------------- CamVid
def test_camvid_real_labels_map_11_to_ignore(shared_data):
    ds = CamVid(shared_data / "camvid", "val", num_classes=11)
    assert len(ds) == 101
    for i in (0, 50):
        raw = np.asarray(Image.open(ds.pairs[i][1])).astype(np.int64)
        assert (raw == 11).any(), "this frame has Unlabelled pixels"
        mask = ds[i]["mask"].numpy()
        assert mask.shape == (360, 480)
        assert (mask[raw == 11] == 255).all() and (mask[raw != 11] == raw[raw != 11]).all()
        assert set(np.unique(mask).tolist()) <= set(range(11)) | {255}


def test_camvid_config_on_real_split(shared_data):
    cfg = compose_cfg([f"environment.data_root={shared_data}"])
    for split, n in (("train", 367), ("val", 101), ("test", 233)):
        assert len(build_dataset(cfg.dataset, split)) == n


# ----------------------------------------------------------------------------------------------- Cityscapes
def _cs_sample(shared_data):
    return shared_data / "cityscapes_sample" / "val_256x128"


def _shipped_train_ids(shared_data):
    p = _cs_sample(shared_data) / "gtFine" / "val" / "frankfurt" / f"{CS_STEM}_gtFine_labelTrainIds.png"
    return np.asarray(Image.open(p)).astype(np.int64)


def test_cityscapes_lut_is_the_official_table():
    lut = label_id_to_train_id()
    assert lut.shape == (34,)
    assert lut[7] == 0 and lut[8] == 1 and lut[26] == 13 and lut[33] == 18  # road, sidewalk, car, bicycle
    assert all(lut[i] == 255 for i in (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30))
    assert sorted(set(lut.tolist()) - {255}) == list(range(19))


def _assert_matches_shipped(ours: np.ndarray, label_ids: np.ndarray, shipped: np.ndarray) -> None:
    """Our trainIds vs the shipped ``_labelTrainIds.png`` of the 256x128 sample.

    The sample's labelIds and labelTrainIds were each reduced from 2048x1024 separately, so 77 of its 32768
    pixels (0.23%) disagree, 75 of them on a class boundary (the shipped value is in the 3x3 neighbourhood of
    ours). The mapping itself must agree exactly: for every labelId, the trainId that the shipped file gives
    most of its pixels is the one we give all of them.
    """
    assert ours.shape == shipped.shape == (128, 256)
    differ = ours != shipped
    assert differ.mean() < 0.003, f"{differ.sum()} pixels differ"
    ys, xs = np.nonzero(differ)
    on_boundary = sum(shipped[y, x] in ours[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] for y, x in zip(ys, xs))
    assert on_boundary >= 0.95 * len(ys)
    for label_id in np.unique(label_ids):
        at = label_ids == label_id
        values, counts = np.unique(shipped[at], return_counts=True)
        assert (ours[at] == label_id_to_train_id()[label_id]).all()
        assert values[counts.argmax()] == label_id_to_train_id()[label_id], f"labelId {label_id}"
    assert len(np.unique(shipped)) > 5


def _label_ids(shared_data):
    p = _cs_sample(shared_data) / "gtFine" / "val" / "frankfurt" / f"{CS_STEM}_gtFine_labelIds.png"
    return np.asarray(Image.open(p)).astype(np.int64)


def test_cityscapes_on_the_fly_conversion_equals_shipped_train_ids(shared_data):
    ds = Cityscapes(_cs_sample(shared_data), "val", num_classes=19)
    assert len(ds) == 1 and ds.pairs[0][1].name == f"{CS_STEM}_gtFine_labelIds.png"
    s = ds[0]
    assert s["name"] == f"{CS_STEM}_leftImg8bit" and s["image"].shape == (3, 128, 256)
    _assert_matches_shipped(s["mask"].numpy(), _label_ids(shared_data), _shipped_train_ids(shared_data))


def test_cityscapes_prepare_writes_train_ids(shared_data, tmp_path):
    root = tmp_path / "cs"
    src = _cs_sample(shared_data) / "gtFine" / "val" / "frankfurt" / f"{CS_STEM}_gtFine_labelIds.png"
    (root / "gtFine" / "val" / "frankfurt").mkdir(parents=True)
    shutil.copy(src, root / "gtFine" / "val" / "frankfurt" / src.name)
    (root / "leftImg8bit" / "val" / "frankfurt").mkdir(parents=True)
    (root / "leftImg8bit" / "val" / "frankfurt" / f"{CS_STEM}_leftImg8bit.png").symlink_to(
        _cs_sample(shared_data) / "leftImg8bit" / "val" / "frankfurt" / f"{CS_STEM}_leftImg8bit.png"
    )
    shutil.copy(src, root / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000576_gtFine_labelIds.png")
    assert prepare_main(["cityscapes", f"root={root}", "workers=2"]) == 0
    assert prepare_main(["cityscapes", str(root)]) == 0  # nothing left to do (older positional spelling)
    out = root / "gtFine" / "val" / "frankfurt" / f"{CS_STEM}_gtFine_labelTrainIds.png"
    written = Image.open(out)
    assert written.mode == "L"
    written = np.asarray(written).astype(np.int64)
    copy = root / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000576_gtFine_labelTrainIds.png"
    assert np.array_equal(np.asarray(Image.open(copy)), written)  # the same labelIds give the same trainIds
    _assert_matches_shipped(written, _label_ids(shared_data), _shipped_train_ids(shared_data))
    assert np.array_equal(written, Cityscapes(root, "val", num_classes=19)[0]["mask"].numpy())
    ds = Cityscapes(root, "val", num_classes=19, label_type="labelTrainIds")
    assert np.array_equal(ds[0]["mask"].numpy(), written)
    assert prepare_main(["cityscapes", f"root={tmp_path / 'nothing'}"]) == 2


def test_cityscapes_labelid_outside_the_table_is_named(tmp_path):
    bad = tmp_path / "x_gtFine_labelIds.png"
    Image.fromarray(np.full((4, 4), 40, np.uint8)).save(bad)
    with pytest.raises(DatasetError, match=r"x_gtFine_labelIds.png has values \[40\] that are no Cityscapes labelId"):
        convert_label_ids(bad, tmp_path / "out.png")


def test_cityscapes_test_split_has_no_labels_and_refuses_evaluation(shared_data, tmp_path):
    cs = cityscapes_tree(shared_data, tmp_path)
    ds = Cityscapes(cs, "test", num_classes=19)
    assert ds.pairs[0][1] is None and (ds[0]["mask"] == 255).all()
    with pytest.raises(
        DatasetError, match=r"split 'test' has no labels, it cannot be evaluated \(labelled splits: train, val\)"
    ):
        Cityscapes(cs, "test", num_classes=19, require_labels=True)


def test_cityscapes_coarse_configs_pick_their_sources(shared_data, tmp_path):
    cityscapes_tree(shared_data, tmp_path)
    counts = {}
    for name in ("cityscapes", "cityscapes_coarse", "cityscapes_fine_coarse"):
        cfg = compose_cfg([f"dataset={name}", f"environment.data_root={tmp_path}"])
        train, val = build_dataset(cfg.dataset, "train"), build_dataset(cfg.dataset, "val")
        counts[name] = len(train)
        assert [p[1].parent.parent.parent.name for p in val.pairs] == ["gtFine"]  # coarse has no val: fine val
        gts = sorted({p[1].name.split("_")[-2] for p in train.pairs})
        assert (
            gts
            == {
                "cityscapes": ["gtFine"],
                "cityscapes_coarse": ["gtCoarse"],
                "cityscapes_fine_coarse": ["gtCoarse", "gtFine"],
            }[name]
        )
        assert np.array_equal(train[0]["mask"].numpy(), label_id_to_train_id()[_label_ids(shared_data)])
    assert counts == {"cityscapes": 1, "cityscapes_coarse": 2, "cityscapes_fine_coarse": 2}


def test_cityscapes_missing_root_prints_the_tree(tmp_path):
    cfg = compose_cfg(["dataset=cityscapes", f"environment.data_root={tmp_path}"])
    with pytest.raises(
        DatasetError, match=r"(?s)cityscapes does not exist; expected layout:\ncityscapes/\n  leftImg8bit/.*gtFine/"
    ):
        build_dataset(cfg.dataset, "train")


def test_cityscapes_missing_split_folder(shared_data):
    with pytest.raises(DatasetError, match=r"missing split folder .*leftImg8bit/train; expected layout"):
        Cityscapes(_cs_sample(shared_data), "train", num_classes=19)


def test_cityscapes_config_names_palette_weights_match_cityscapesscripts():
    cfg = compose_cfg(["dataset=cityscapes"]).dataset
    official = sorted((lb for lb in CS_LABELS if 0 <= lb.trainId < 255), key=lambda lb: lb.trainId)
    assert list(cfg.class_names) == [lb.name for lb in official]
    assert [tuple(c) for c in cfg.palette] == [lb.color for lb in official]
    assert len(cfg.class_weights) == 19 and cfg.class_weights[0] == 0.8373 and cfg.class_weights[-1] == 1.0507


# ----------------------------------------------------------------------------------------------- ADE20K
def test_ade20k_reduce_zero_label_on_real_files(shared_data):
    root = shared_data / "ade20k_sample" / "ADEChallengeData2016"
    ds = ADE20K(root, "val", num_classes=150)
    assert [p[0].name for p in ds.pairs] == [f"ADE_val_0000000{i}.jpg" for i in (1, 2, 3)]
    sizes = []
    for i in range(3):
        raw = np.asarray(Image.open(ds.pairs[i][1])).astype(np.int64)
        mask = ds[i]["mask"].numpy()
        sizes.append(mask.shape[::-1])
        assert (raw == 0).any()
        assert (mask[raw == 0] == 255).all() and (mask[raw > 0] == raw[raw > 0] - 1).all()
        assert mask[mask != 255].max() < 150
    assert sizes == [(683, 512), (500, 364), (400, 300)]
    with pytest.raises(DatasetError, match=r"missing split folder .*images/training"):
        ADE20K(root, "train", num_classes=150)


def test_ade20k_config_class_names_come_from_object_info(shared_data):
    names = read_object_info(shared_data / "ade20k_sample")
    cfg = compose_cfg(["dataset=ade20k", f"environment.data_root={shared_data / 'ade20k_sample'}"]).dataset
    assert list(cfg.class_names) == names and len(names) == 150 and len(cfg.palette) == 150
    assert names[:3] == ["wall", "building", "sky"] and names[44] == "chest of drawers"
    assert len(build_dataset(cfg, "val")) == 3
    with pytest.raises(DatasetError, match="the .csv variant loses the spaces"):
        read_object_info(shared_data / "ade20k_sample" / "objectInfo150.csv")
