"""PASCAL VOC2010 Context on a generated fixture in the official structure (.mat LabelMap via scipy.io.savemat)."""

import numpy as np
import pytest
from PIL import Image

from datasets import DatasetError, VOC2010Context, build_dataset
from datasets.prepare import main as prepare_main
from datasets.voc_context import CONTEXT59_IDS, context_label_map
from tests.conftest import compose_cfg
from tests.datasets.trees import VOC_59, VOC_60, VOC_RAW, voc_context_tree


def test_the_59_class_selection():
    assert len(CONTEXT59_IDS) == 59 and list(CONTEXT59_IDS) == sorted(CONTEXT59_IDS)
    # the PyTorch-Encoding / MMSegmentation list (with 0 = background), in its original order
    encoding = [
        0,
        2,
        259,
        260,
        415,
        324,
        9,
        258,
        144,
        18,
        19,
        22,
        23,
        397,
        25,
        284,
        158,
        159,
        416,
        33,
        162,
        420,
        454,
        295,
        296,
        427,
        44,
        45,
        46,
        308,
        59,
        440,
        445,
        31,
        232,
        65,
        354,
        424,
        68,
        326,
        72,
        458,
        34,
        207,
        80,
        355,
        85,
        347,
        220,
        349,
        360,
        98,
        187,
        104,
        105,
        366,
        189,
        368,
        113,
        115,
    ]
    assert sorted(encoding) == [0, *CONTEXT59_IDS]
    assert context_label_map(VOC_RAW).tolist() == VOC_60.tolist()


@pytest.fixture
def prepared(tmp_path):
    root = voc_context_tree(tmp_path)
    assert prepare_main(["voc_context", f"root={root}"]) == 0
    return root


def test_prepare_writes_png_labels_and_lists(prepared):
    lists = prepared / "ImageSets" / "SegmentationContext"
    assert (lists / "train.txt").read_text().split() == ["2008_000002", "2008_000003"]
    assert (lists / "val.txt").read_text().split() == ["2008_000007", "2008_000008"]
    pngs = sorted(p.name for p in (prepared / "SegmentationClassContext").iterdir())
    assert pngs == ["2008_000002.png", "2008_000003.png", "2008_000007.png", "2008_000008.png"]  # 2010_999999: no image
    lab = Image.open(prepared / "SegmentationClassContext" / "2008_000002.png")
    assert lab.mode == "L" and lab.size == (60, 40)
    assert np.array_equal(np.asarray(lab), np.tile(VOC_60, (20, 20)))


@pytest.mark.parametrize("config,expected,k", [("voc2010_context", VOC_59, 59), ("voc2010_context_60", VOC_60, 60)])
def test_59_and_60_class_variants(prepared, config, expected, k):
    cfg = compose_cfg([f"dataset={config}", f"environment.data_root={prepared.parent}"])
    assert cfg.dataset.num_classes == k == len(cfg.dataset.class_names) == len(cfg.dataset.palette)
    assert cfg.dataset.test.flip and cfg.dataset.test.scales == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert cfg.val_batch_size == 1
    assert (cfg.dataset.class_names[0] == "background") == (k == 60)
    ds = build_dataset(cfg.dataset, "val")
    assert len(ds) == 2 and ds[0]["image"].shape == (3, 40, 60)
    assert np.array_equal(ds[0]["mask"].numpy(), np.tile(expected, (20, 20)))
    assert cfg.dataset.class_names[int(ds[0]["mask"][1, 1])] == "wood"


def test_not_prepared_says_which_command_to_run(tmp_path):
    root = voc_context_tree(tmp_path)
    with pytest.raises(
        DatasetError,
        match=r"missing split list .*SegmentationContext/train.txt: run `python -m "
        r"datasets.prepare voc_context",
    ):
        VOC2010Context(root, "train", num_classes=59)


def test_prepare_errors_name_the_missing_input(tmp_path, capsys):
    assert prepare_main(["voc_context", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "VOCdevkit/VOC2010/JPEGImages" in err and "trainval/<id>.mat" in err


def test_mat_without_label_map_is_named(tmp_path):
    from scipy.io import savemat

    root = voc_context_tree(tmp_path)
    savemat(str(root / "trainval" / "2008_000002.mat"), {"Other": np.zeros((2, 2))})
    with pytest.raises(DatasetError, match=r"2008_000002.mat has no 'LabelMap' \(keys: \['Other'\]\)"):
        from datasets.voc_context import prepare_voc_context

        prepare_voc_context(root)
