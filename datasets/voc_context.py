"""PASCAL-Context (Mottaghi et al., CVPR 2014) on PASCAL VOC2010: 59 classes, or 60 with background.

The official annotations are MATLAB files ``trainval/<image id>.mat`` whose ``LabelMap`` (uint16, H x W)
holds the 459 full-set category ids of ``labels.txt`` (0 = unlabelled). The standard benchmark keeps the
59 most frequent categories (the selection of Mottaghi et al., as used by PyTorch-Encoding, MMSegmentation's
``tools/dataset_converters/pascal_context.py`` and the MIC-DKFZ framework): :data:`CONTEXT59_IDS`.

``python -m datasets.prepare voc_context root=<root>`` (:func:`prepare_voc_context`) writes one PNG per image with
0 = background (every category not among the 59, and unlabelled) and 1..59 = the classes in sorted-id order,
plus ``train``/``val`` lists (the VOC2010 ``ImageSets/Main`` split: 4998 / 5105 images). Both dataset
variants read these PNGs: ``VOC2010_Context`` (59 classes) ignores background (``reduce_zero_label``:
0 -> 255, v -> v - 1), ``VOC2010_Context_60`` keeps it as class 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from datasets.base import CorruptFileError, DatasetError, LayoutError, SegmentationDataset, lookup

#: Full-set (459-class ``labels.txt``) ids of the 59 PASCAL-Context classes, sorted; their index + 1 is the
#: label written by the preparation (aeroplane=2 -> 1, ..., wood=458 -> 59).
CONTEXT59_IDS = (
    2,
    9,
    18,
    19,
    22,
    23,
    25,
    31,
    33,
    34,
    44,
    45,
    46,
    59,
    65,
    68,
    72,
    80,
    85,
    98,
    104,
    105,
    113,
    115,
    144,
    158,
    159,
    162,
    187,
    189,
    207,
    220,
    232,
    258,
    259,
    260,
    284,
    295,
    296,
    308,
    324,
    326,
    347,
    349,
    354,
    355,
    360,
    366,
    368,
    397,
    415,
    416,
    420,
    424,
    427,
    440,
    445,
    454,
    458,
)

LAYOUT = (
    "voc2010_context/\n"
    "  VOCdevkit/VOC2010/JPEGImages/<id>.jpg            (VOCtrainval_03-May-2010.tar)\n"
    "  VOCdevkit/VOC2010/ImageSets/Main/{train,val}.txt\n"
    "  trainval/<id>.mat                                (PASCAL-Context trainval.tar.gz, LabelMap)\n"
    "  written by `python -m datasets.prepare voc_context root=<root>`:\n"
    "  SegmentationClassContext/<id>.png                (0 = background, 1..59 = classes)\n"
    "  ImageSets/SegmentationContext/{train,val}.txt"
)


def context_label_map(label_map: np.ndarray) -> np.ndarray:
    """Map a full-set ``LabelMap`` (int, H x W, 0..459) to uint8 0 = background, 1..59 = the 59 classes."""
    table = {raw: i + 1 for i, raw in enumerate(CONTEXT59_IDS)}
    return np.clip(lookup(label_map, table, unknown=0), 0, 59).astype(np.uint8)


def prepare_voc_context(
    root: Path, voc_dir: Path | None = None, context_dir: Path | None = None, overwrite: bool = False
) -> dict[str, int]:
    """Convert PASCAL-Context ``.mat`` labels to PNGs and write the train/val lists (see module docstring).

    Args:
        root: output folder (and default location of the inputs, see :data:`LAYOUT`).
        voc_dir: ``VOCdevkit/VOC2010`` folder (default ``root/VOCdevkit/VOC2010``).
        context_dir: folder holding the ``<id>.mat`` files, searched recursively (default ``root/trainval``).
        overwrite: rewrite existing PNGs.

    Returns:
        ``{"train": n, "val": n}``: images per written list (ids with both a JPEG and a ``.mat``).

    Raises:
        DatasetError: a missing input folder/list (named, with the expected tree), no ``.mat`` files, a
            ``.mat`` without ``LabelMap``.
    """
    from scipy.io import loadmat

    root = Path(root)
    voc_dir = Path(voc_dir) if voc_dir else root / "VOCdevkit" / "VOC2010"
    context_dir = Path(context_dir) if context_dir else root / "trainval"
    for d in (voc_dir / "JPEGImages", context_dir):
        if not d.is_dir():
            raise DatasetError(f"VOC2010_Context: missing {d}; expected layout:\n{LAYOUT}")
    mats = {p.stem: p for p in context_dir.rglob("*.mat")}
    if not mats:
        raise DatasetError(f"VOC2010_Context: no .mat label files under {context_dir}; expected layout:\n{LAYOUT}")
    out_dir, list_dir = root / "SegmentationClassContext", root / "ImageSets" / "SegmentationContext"
    out_dir.mkdir(parents=True, exist_ok=True)
    list_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "val"):
        ids = SegmentationDataset.read_list(voc_dir / "ImageSets" / "Main" / f"{split}.txt")
        ids = [i for i in ids if i in mats and (voc_dir / "JPEGImages" / f"{i}.jpg").is_file()]
        for n, image_id in enumerate(ids):
            dst = out_dir / f"{image_id}.png"
            if dst.exists() and not overwrite:
                continue
            try:
                mat = loadmat(str(mats[image_id]))
            except (OSError, ValueError, TypeError) as e:
                raise CorruptFileError(f"cannot read {mats[image_id]}: {e}") from e
            if "LabelMap" not in mat:
                raise DatasetError(
                    f"{mats[image_id]} has no 'LabelMap' (keys: {sorted(k for k in mat if not k.startswith('__'))})"
                )
            Image.fromarray(context_label_map(mat["LabelMap"]), mode="L").save(dst)
            if (n + 1) % 1000 == 0:
                print(f"{split}: {n + 1}/{len(ids)}", flush=True)
        (list_dir / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        counts[split] = len(ids)
    return counts


class VOC2010Context(SegmentationDataset):
    """Prepared PASCAL-Context: ``VOCdevkit/VOC2010/JPEGImages/<id>.jpg`` + ``SegmentationClassContext/<id>.png``.

    ``reduce_zero_label=True`` (config ``voc2010_context``): 59 classes, background ignored;
    ``False`` (``voc2010_context_60``): 60 classes, 0 = background.

    Raises:
        DatasetError: not prepared yet (says which command to run), an id without image or label (named).
    """

    layout = LAYOUT
    splits = ("train", "val")
    has_labels = ("train", "val")

    def find_pairs(self, root: Path, split: str):
        list_file = root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
        if not list_file.is_file():
            raise LayoutError(
                f"missing split list {list_file}: run `python -m datasets.prepare voc_context root={root}`"
            )
        pairs = []
        for image_id in self.read_list(list_file):
            img = root / "VOCdevkit" / "VOC2010" / "JPEGImages" / f"{image_id}.jpg"
            lab = root / "SegmentationClassContext" / f"{image_id}.png"
            if not img.is_file():
                raise DatasetError(f"missing image {img} (listed in {list_file})")
            if not lab.is_file():
                raise DatasetError(f"image {img} has no label: expected {lab}")
            pairs.append((img, lab))
        return pairs
