"""Cityscapes (Cordts et al., CVPR 2016) in the official layout: fine, coarse and fine+coarse training sets.

Label conversion labelId -> trainId uses the official table of ``cityscapesscripts.helpers.labels``
(19 trainIds; every label whose trainId is 255 or -1 becomes ``ignore_index``). Either on the fly from
``*_gtFine_labelIds.png`` (default, ``label_type: labelIds``) or from the ``*_labelTrainIds.png`` files written
by ``python -m datasets.prepare cityscapes root=<root>`` (``label_type: labelTrainIds``).

Which annotation folders make up a split is configuration (``sources``): the fine dataset uses
``gtFine/{train,val,test}``; ``Cityscapes_coarse`` trains on ``gtCoarse/{train,train_extra}`` and
``Cityscapes_fine_coarse`` on ``gtFine/train`` + ``gtCoarse/train_extra`` (the MIC-DKFZ semantic_segmentation
framework's choice); coarse data has no val split, so both validate on fine ``val``. The test split has no
public labels: it yields ignore-only masks and refuses evaluation (``require_labels=True``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from PIL import Image

from datasets.base import CorruptFileError, DatasetError, LayoutError, SegmentationDataset, lookup
from datasets.image_io import ImageReadError, read_label

log = logging.getLogger(__name__)

#: ``{split: [annotation folder/sub-folder, ...]}`` of the fine dataset (images: ``leftImg8bit/<sub-folder>``).
FINE_SOURCES = {"train": ["gtFine/train"], "val": ["gtFine/val"], "test": ["gtFine/test"]}


def label_id_to_train_id(ignore_index: int = 255) -> np.ndarray:
    """Lookup table int64[34]: Cityscapes labelId (0..33) -> trainId (0..18) or ``ignore_index``.

    Built from ``cityscapesscripts.helpers.labels.labels`` (the official definition); label ``-1``
    (license plate) is not a valid labelId in ``*_labelIds.png`` files and is left out.
    """
    lut = np.full(max(lb.id for lb in CS_LABELS) + 1, -1, dtype=np.int64)
    for lb in CS_LABELS:
        if lb.id >= 0:
            lut[lb.id] = lb.trainId if 0 <= lb.trainId < 255 else ignore_index
    return lut


class Cityscapes(SegmentationDataset):
    """Cityscapes ``leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png`` + ``<gt>/<split>/<city>/<stem>_<gt>_<type>.png``.

    Args:
        root: folder holding ``leftImg8bit/``, ``gtFine/`` (and ``gtCoarse/``).
        split: ``train``, ``val`` or ``test`` (test: no labels).
        sources: ``{split: ["gtFine/train", "gtCoarse/train_extra", ...]}``, merged over :data:`FINE_SOURCES`.
        label_type: ``labelIds`` (converted with cityscapesscripts on the fly) or ``labelTrainIds``
            (written by ``python -m datasets.prepare cityscapes``).
        **kwargs: see :class:`datasets.base.SegmentationDataset`.

    Raises:
        DatasetError: unknown ``label_type``; a missing folder or label file (named, with the expected tree).
    """

    layout = (
        "cityscapes/\n"
        "  leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png\n"
        "  leftImg8bit/train_extra/<city>/...                   (coarse only)\n"
        "  gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png\n"
        "  gtCoarse/{train,train_extra,val}/<city>/..._gtCoarse_labelIds.png   (coarse only)\n"
        "  (*_labelTrainIds.png instead with label_type=labelTrainIds, see python -m datasets.prepare cityscapes)"
    )
    splits = ("train", "val", "test")
    has_labels = ("train", "val")
    label_types = ("labelIds", "labelTrainIds")

    def __init__(
        self,
        root,
        split: str = "train",
        sources: Mapping[str, Sequence[str]] | None = None,
        label_type: str = "labelIds",
        **kwargs,
    ):
        if label_type not in self.label_types:
            raise DatasetError(f"Cityscapes: unknown label_type {label_type!r}; valid: {', '.join(self.label_types)}")
        self.sources = {k: list(v) for k, v in {**FINE_SOURCES, **dict(sources or {})}.items()}
        self.label_type = label_type
        self._lut = label_id_to_train_id(int(kwargs.get("ignore_index", 255)))
        super().__init__(root, split, **kwargs)

    def find_pairs(self, root: Path, split: str):
        if split not in self.sources:
            raise DatasetError(f"Cityscapes: split {split!r} has no sources (configured: {', '.join(self.sources)})")
        pairs = []
        for source in self.sources[split]:
            gt, sub = source.split("/", 1)
            image_dir = root / "leftImg8bit" / sub
            if not image_dir.is_dir():
                raise LayoutError(f"missing split folder {image_dir}")
            pairs += self.pair_by_stem(
                image_dir,
                root / gt / sub,
                label_suffix=f"_{gt}_{self.label_type}",
                image_suffix="_leftImg8bit",
                require_labels=split in self.has_labels,
            )
        log.info(f"Cityscapes {split}: {len(pairs)} images from {', '.join(self.sources[split])}")
        return pairs

    def map_label(self, label: np.ndarray) -> np.ndarray:
        return label if self.label_type == "labelTrainIds" else lookup(label, self._lut)


def convert_label_ids(src: Path, dst: Path, ignore_index: int = 255) -> None:
    """Write the trainId PNG (uint8, L mode) of the labelId PNG ``src`` to ``dst``.

    Raises:
        CorruptFileError: ``src`` cannot be read. DatasetError: ``src`` has values that are no Cityscapes labelId.
    """
    try:
        raw = read_label(src)
    except ImageReadError as e:
        raise CorruptFileError(str(e)) from e
    train = lookup(raw, label_id_to_train_id(ignore_index))
    if (train < 0).any():
        raise DatasetError(
            f"label {src} has values {sorted(np.unique(raw[train < 0]).tolist())[:10]} that are no "
            f"Cityscapes labelId (0..33)"
        )
    Image.fromarray(train.astype(np.uint8), mode="L").save(dst)


def _convert_one(args: tuple[Path, Path]) -> None:
    convert_label_ids(*args)


def prepare_cityscapes(root: Path, overwrite: bool = False, workers: int = 1) -> int:
    """Write ``*_labelTrainIds.png`` next to every ``*_labelIds.png`` under ``root/gtFine`` and ``root/gtCoarse``.

    The conversion uses the cityscapesscripts label table (:func:`label_id_to_train_id`); it is the
    labelId-PNG equivalent of ``cityscapesscripts.preparation.createTrainIdLabelImgs`` (which rasterises the
    ``*_polygons.json`` files instead).

    Args:
        root: the Cityscapes folder. overwrite: rewrite existing outputs. workers: processes (1 = serial).

    Returns:
        number of files written.

    Raises:
        DatasetError: neither ``gtFine/`` nor ``gtCoarse/`` exists under ``root`` (the expected tree is shown), or
            a label with values that are no labelId (named).
    """
    root = Path(root)
    gts = [root / g for g in ("gtFine", "gtCoarse") if (root / g).is_dir()]
    if not gts:
        raise DatasetError(f"Cityscapes: no gtFine/ or gtCoarse/ under {root}; expected layout:\n{Cityscapes.layout}")
    jobs = []
    for gt in gts:
        for src in sorted(gt.rglob("*_labelIds.png")):
            dst = src.with_name(src.name.replace("_labelIds.png", "_labelTrainIds.png"))
            if overwrite or not dst.exists():
                jobs.append((src, dst))
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            for i, _ in enumerate(pool.map(_convert_one, jobs, chunksize=64)):
                if (i + 1) % 1000 == 0:
                    print(f"{i + 1}/{len(jobs)}", flush=True)
    else:
        for i, job in enumerate(jobs):
            _convert_one(job)
            if (i + 1) % 1000 == 0:
                print(f"{i + 1}/{len(jobs)}", flush=True)
    return len(jobs)
