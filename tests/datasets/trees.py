"""Builders of tiny dataset trees in the official layouts (real samples linked from ../shared/data, or generated)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

CS_STEM = "frankfurt_000000_000294"
#: dataset configs that the trees below serve (real Cityscapes / ADE20K samples, generated VOC Context and folder)
TREE_DATASETS = [
    "cityscapes",
    "cityscapes_coarse",
    "cityscapes_fine_coarse",
    "ade20k",
    "voc2010_context",
    "voc2010_context_60",
    "folder",
]


def link(src: Path, dst: Path) -> Path:
    """Symlink file ``src`` at ``dst`` (parents created)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(Path(src).resolve(), dst)
    return dst


def cityscapes_tree(shared: Path, root: Path) -> Path:
    """``root/cityscapes`` holding the one real 256x128 val frame as train, val, test and coarse train/train_extra.

    Labels are linked (fine) or copied under the coarse name; images are symlinks (never copied into the repo).
    """
    src = shared / "cityscapes_sample" / "val_256x128"
    img = src / "leftImg8bit" / "val" / "frankfurt" / f"{CS_STEM}_leftImg8bit.png"
    lab = src / "gtFine" / "val" / "frankfurt" / f"{CS_STEM}_gtFine_labelIds.png"
    cs = root / "cityscapes"
    for sub in ("train", "val", "test", "train_extra"):
        link(img, cs / "leftImg8bit" / sub / "frankfurt" / img.name)
    for sub in ("train", "val", "test"):
        link(lab, cs / "gtFine" / sub / "frankfurt" / lab.name)
    for sub in ("train", "train_extra"):
        link(lab, cs / "gtCoarse" / sub / "frankfurt" / f"{CS_STEM}_gtCoarse_labelIds.png")
    return cs


def ade_tree(shared: Path, root: Path) -> Path:
    """``root/ADEChallengeData2016`` with the 3 real validation images as both training and validation."""
    src = shared / "ade20k_sample" / "ADEChallengeData2016"
    ade = root / "ADEChallengeData2016"
    for kind, ext in (("images", ".jpg"), ("annotations", ".png")):
        for f in sorted((src / kind / "validation").glob(f"*{ext}")):
            for sub in ("training", "validation"):
                link(f, ade / kind / sub / f.name)
    return ade


def random_image(path: Path, h: int, w: int, seed: int = 0) -> Path:
    """Write a random RGB image (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def folder_tree(root: Path, n: int = 2, h: int = 48, w: int = 64, num_classes: int = 3) -> Path:
    """``root/folder`` with ``n`` train and val images (PNG) + masks holding 0..num_classes-1 and 255."""
    fd = root / "folder"
    for split in ("train", "val"):
        for i in range(n):
            random_image(fd / "images" / split / f"img{i}.png", h, w, seed=i)
            mask = (np.arange(h * w).reshape(h, w) % num_classes).astype(np.uint8)
            mask[0, :5] = 255
            (fd / "masks" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(fd / "masks" / split / f"img{i}.png")
    return fd


#: LabelMap values of the generated PASCAL-Context fixture and what they become (59 / 60 classes):
#: 0 unlabelled and 400 (not among the 59) are background; 2 aeroplane, 9 bag, 458 wood.
VOC_RAW = np.array([[0, 2, 9], [400, 458, 2]], dtype=np.uint16)
VOC_60 = np.array([[0, 1, 2], [0, 59, 1]])
VOC_59 = np.array([[255, 0, 1], [255, 58, 0]])


def voc_context_tree(
    root: Path,
    ids_train=("2008_000002", "2008_000003"),
    ids_val=("2008_000007", "2008_000008"),
    h: int = 40,
    w: int = 60,
) -> Path:
    """Raw (unprepared) ``root/voc2010_context``: VOC2010 JPEGs + ``ImageSets/Main`` lists + PASCAL-Context
    ``trainval/<id>.mat`` files with a uint16 ``LabelMap`` (the official structure), built with scipy.io.savemat.

    Each LabelMap tiles :data:`VOC_RAW` over (h, w); one extra .mat without image is ignored by the preparation.
    """
    from scipy.io import savemat

    vc = root / "voc2010_context"
    voc = vc / "VOCdevkit" / "VOC2010"
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (vc / "trainval").mkdir(parents=True)
    for split, ids in (("train", ids_train), ("val", ids_val)):
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for k, image_id in enumerate(ids):
            random_image(voc / "JPEGImages" / f"{image_id}.jpg", h, w, seed=k)
    label_map = np.tile(VOC_RAW, (h // 2, w // 3))
    for image_id in (*ids_train, *ids_val, "2010_999999"):
        savemat(str(vc / "trainval" / f"{image_id}.mat"), {"LabelMap": label_map})
    return vc
