"""MMSegmentation (OpenMMLab, https://github.com/open-mmlab/mmsegmentation) segmentors as segbench models.

``model=mmseg model.config=segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py`` builds the segmentor from
the config files shipped inside the installed ``mmseg`` package (``mmseg/.mim/configs/``), with random weights
or ``model.checkpoint=<local .pth>``, and adapts it to the segbench model contract: ``forward(x)`` returns
``{"out": decode-head logits, "aux": auxiliary-head logits, ...}`` at the heads' resolution (1/4 or 1/8; the
loss and inference code resize), ``output_names`` lists them. segbench's losses, LightningModule, inference
engine and benchmark are used; ``lossfunction=[native]`` trains with the segmentor's own ``loss()`` instead
(:meth:`MMSegModel.native_loss`: Mask2Former's set-matching loss), validation and inference staying segbench's.

Optional extra: ``pip install -r requirements-mmseg.txt`` (mmengine, mmcv-lite, mmsegmentation; mmdet and
mmpretrain for Mask2Former/MaskFormer heads and ConvNeXt/PoolFormer backbones). mmcv-lite has
no compiled ``mmcv._ext``; :func:`import_mmseg` registers a stand-in module whose functions raise
NotImplementedError when called, since the ops segmentors use on CPU have pure-PyTorch paths. PSANet (PSAMask)
and other configs calling compiled ops (e.g. CCNet criss-cross attention, deformable convs) fail when run.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.checkpoint import read_state_dict

INSTALL_HINT = "pip install -r requirements-mmseg.txt"

#: decode heads that produce mask classifications rather than per-pixel logits: run through ``encode_decode``
QUERY_HEADS = ("Mask2FormerHead", "MaskFormerHead", "SideAdapterCLIPHead")
#: backbones whose relative position tables fix the input size to their ``img_size`` (MMSeg feeds them exact
#: ``crop_size`` windows: slide inference at test time, padding to ``crop_size`` in training)
FIXED_SIZE_BACKBONES = ("BEiT", "MAE")


class _MissingExt(types.ModuleType):
    """Stand-in for mmcv's compiled ``mmcv._ext``: attribute lookups succeed, calls raise NotImplementedError."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def op(*args, **kwargs):
            raise NotImplementedError(
                f"mmcv._ext.{name} is a compiled mmcv op, absent from mmcv-lite; this MMSeg config needs the full "
                f"mmcv build (pip install mmcv==2.1.0, 8-17 min compile on 2 cores)"
            )

        op.__name__ = name
        return op


def import_mmseg():
    """Import ``mmseg`` (with the ``mmcv._ext`` stand-in when mmcv is mmcv-lite) and return the module.

    Raises:
        ImportError: the extra is not installed; one line naming ``requirements-mmseg.txt``.
    """
    try:
        import mmcv  # noqa: F401  (pyflakes: availability check)
        import mmengine  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"model=mmseg needs the optional MMSegmentation extra ({e.name} missing): {INSTALL_HINT}"
        ) from None
    if "mmcv._ext" not in sys.modules:
        import importlib.machinery
        import importlib.util

        try:
            has_ext = importlib.util.find_spec("mmcv._ext") is not None
        except (ImportError, ValueError):
            has_ext = False
        if not has_ext:
            ext = _MissingExt("mmcv._ext")
            ext.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)  # pkgutil.find_loader needs one
            sys.modules["mmcv._ext"] = ext
    try:
        import mmseg
        import mmseg.models
    except ImportError as e:
        raise ImportError(f"model=mmseg needs the optional MMSegmentation extra ({e}): {INSTALL_HINT}") from None
    return mmseg


def mmseg_config_root() -> Path:
    """The ``configs/`` folder shipped in the installed mmsegmentation package (``mmseg/.mim/configs``)."""
    return Path(import_mmseg().__file__).parent / ".mim" / "configs"


def resolve_config(config: str | os.PathLike) -> Path:
    """Find an MMSeg config: an existing file, a path below :func:`mmseg_config_root`, or a bare file name.

    Raises:
        FileNotFoundError: not found; the message lists the closest config names.
    """
    p = Path(config)
    if p.is_file():
        return p
    root = mmseg_config_root()
    name = p.name if p.suffix == ".py" else f"{p.name}.py"
    for cand in (root / p, root / p.with_suffix(".py"), *root.rglob(name)):
        if cand.is_file():
            return cand
    names = sorted(str(c.relative_to(root)) for c in root.rglob("*.py") if "_base_" not in c.parts)
    tokens = set(re.split(r"[/_.\-]+", str(config).lower())) - {"", "py"}
    close = [n for n in names if tokens <= set(re.split(r"[/_.\-]+", n.lower()))][:5] or difflib.get_close_matches(
        str(config), names, n=5, cutoff=0.3
    )
    raise FileNotFoundError(f"MMSeg config {str(config)!r} not found under {root}; closest: {close}")


def _set_num_classes(head_cfg, num_classes: int) -> None:
    """Set ``num_classes`` of each head config; a mask-classification head's ``loss_cls.class_weight`` (K class
    weights and the "no object" weight, ``[1.0] * K + [0.1]`` in MMSeg's Mask2Former configs) follows.

    Raises:
        ValueError: a ``class_weight`` with unequal class weights (it cannot be carried to another K).
    """
    for h in head_cfg if isinstance(head_cfg, (list, tuple)) else [head_cfg]:
        if h is not None and "num_classes" in h:
            old, h["num_classes"] = h["num_classes"], num_classes
            cls = h.get("loss_cls") if isinstance(h.get("loss_cls"), Mapping) else None
            weights = list(cls.get("class_weight") or []) if cls is not None else []
            if len(weights) == old + 1:
                if len(set(weights[:-1])) > 1:
                    raise ValueError(
                        f"{h.get('type')}.loss_cls.class_weight has unequal class weights {weights[:-1]}; "
                        f"give model.cfg_options for num_classes={num_classes}"
                    )
                cls["class_weight"] = [weights[0]] * num_classes + [weights[-1]]


def _strip_init(cfg) -> None:
    """Remove every ``init_cfg``/``pretrained`` so that building downloads nothing (recursively)."""
    if isinstance(cfg, Mapping):
        for key in list(cfg.keys()):
            if key in ("init_cfg", "pretrained") and cfg[key] is not None:
                cfg[key] = None
            else:
                _strip_init(cfg[key])
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            _strip_init(item)


class MMSegModel(nn.Module):
    """An MMSegmentation segmentor (EncoderDecoder / CascadeEncoderDecoder) behind the segbench model contract.

    Args:
        config: MMSeg config (file path, path below ``mmseg/.mim/configs/`` such as
            ``deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py``, or a bare file name).
        num_classes: K, overrides ``num_classes`` of the decode and auxiliary heads.
        checkpoint: optional local MMSeg ``.pth`` (``state_dict`` with the segmentor's keys); heads whose class
            count differs are left at random init and reported. Nothing is downloaded.
        aux_outputs: return the auxiliary heads as outputs while training (``"aux"``, or ``"aux0"``,
            ``"aux1"``, ... for several) and, for cascade segmentors (OCRNet), the earlier decode heads as
            ``"stage0"``, ...; False drops them (``output_names == ("out",)``).
        cfg_options: dotted-key overrides merged into the MMSeg config (as ``--cfg-options``), e.g.
            ``{"model.backbone.depth": 50}``.

    Input float[N,3,H,W] normalised by the segbench dataset config (MMSeg's data_preprocessor is not used). A backbone
    of fixed input size (BEiT, MAE: ``img_size``, :data:`FIXED_SIZE_BACKBONES`) gets smaller inputs zero-padded at the
    bottom and right to ``img_size`` and its outputs resized to the padded size and cropped back (as MMSeg pads a
    window to ``crop_size``); a larger input is a ValueError naming ``mode=slide crop_size=``.
    Output ``{"out": float[N,K,h,w], "aux": float[N,K,h',w']}`` in training, ``{"out": ...}`` in eval mode
    (auxiliary heads are training-only, as in MMSeg). Query-based heads (Mask2Former, MaskFormer, SAN; need
    mmdet/mmpretrain) run through ``encode_decode`` and return per-pixel class scores (softmax class x sigmoid
    mask, non-negative, not logits) at input size (use ``mode: whole`` inference); segbench's per-pixel losses
    applied to them are not Mask2Former's set-matching loss: train those with ``lossfunction=[native]``
    (:meth:`native_loss`).

    Raises:
        ImportError: the extra is missing (one line naming ``requirements-mmseg.txt``).
        FileNotFoundError: unknown config (closest names listed) or missing checkpoint.
    """

    def __init__(
        self,
        config: str,
        num_classes: int,
        checkpoint: str | None = None,
        aux_outputs: bool = True,
        cfg_options: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        import_mmseg()
        from mmengine.config import Config
        from mmengine.logging import MMLogger
        from mmengine.model import revert_sync_batchnorm
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS

        self.config_path = resolve_config(config)
        cfg = Config.fromfile(str(self.config_path))
        if cfg_options:
            cfg.merge_from_dict(dict(cfg_options))
        model_cfg = cfg.model
        model_cfg.pop("data_preprocessor", None)
        _strip_init(model_cfg)
        _set_num_classes(model_cfg.get("decode_head"), num_classes)
        _set_num_classes(model_cfg.get("auxiliary_head"), num_classes)
        init_default_scope("mmseg")
        segmentor = MODELS.build(model_cfg)
        mm_log = MMLogger.get_current_instance()
        level = mm_log.level
        mm_log.setLevel(logging.WARNING)  # init_weights logs every tensor's initialiser at INFO
        try:
            segmentor.init_weights()
        finally:
            mm_log.setLevel(level)
        self.segmentor = revert_sync_batchnorm(segmentor)  # SyncBN -> BN (CPU, single process)
        self.num_classes = num_classes
        self.query_head = type(self._heads()[-1]).__name__ in QUERY_HEADS
        backbone = self.segmentor.backbone
        fixed = type(backbone).__name__ in FIXED_SIZE_BACKBONES
        self.fixed_size = tuple(int(s) for s in backbone.img_size) if fixed else None
        aux = getattr(self.segmentor, "auxiliary_head", None) if aux_outputs and not self.query_head else None
        n_aux = 0 if aux is None else (len(aux) if isinstance(aux, nn.ModuleList) else 1)
        self.aux_names = ["aux"] if n_aux == 1 else [f"aux{i}" for i in range(n_aux)]
        n_stages = len(self._heads()) if aux_outputs and not self.query_head else 1
        self.stage_names = [f"stage{i}" for i in range(n_stages - 1)]  # cascade heads before the last (OCRNet)
        self.output_names = ("out", *self.stage_names, *self.aux_names)
        if checkpoint:
            self.load_pretrained(checkpoint)

    def _heads(self) -> list[nn.Module]:
        head = self.segmentor.decode_head
        return list(head) if isinstance(head, nn.ModuleList) else [head]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """float[N,3,H,W] -> ``{"out": logits float[N,K,h,w], "aux"...: float[N,K,h',w']}`` (see class doc).

        Raises:
            ValueError: an input larger than the fixed ``img_size`` of a BEiT/MAE backbone.
        """
        h, w = x.shape[-2:]
        if self.fixed_size is None or (h, w) == self.fixed_size:
            return self._forward(x)
        fh, fw = self.fixed_size
        if h > fh or w > fw:
            raise ValueError(
                f"{self.config_path.name}: input {h}x{w} is larger than the backbone's fixed img_size {fh}x{fw}; "
                f"infer with mode=slide crop_size=[{fh},{fw}] (or build it with model.cfg_options for another size)"
            )
        outputs = self._forward(torch.nn.functional.pad(x, (0, fw - w, 0, fh - h)))
        resize = torch.nn.functional.interpolate
        return {
            k: resize(v, size=(fh, fw), mode="bilinear", align_corners=False)[..., :h, :w] for k, v in outputs.items()
        }

    def _forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.query_head:
            h, w = x.shape[-2:]
            metas = [dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w))] * x.shape[0]
            return {"out": self.segmentor.encode_decode(x, metas)}
        feats = self.segmentor.extract_feat(x)
        heads = self._heads()
        out = heads[0].forward(feats)
        stages = []
        for head in heads[1:]:  # CascadeEncoderDecoder (OCRNet), as its mode="tensor": head i refines head i-1
            stages.append(out)
            out = head.forward(feats, out)
        outputs = {"out": out}
        if self.training:
            outputs.update(zip(self.stage_names, stages))
        if self.training and self.aux_names:
            aux = self.segmentor.auxiliary_head
            for name, head in zip(self.aux_names, aux if isinstance(aux, nn.ModuleList) else [aux]):
                outputs[name] = head.forward(feats)
        return outputs

    @staticmethod
    def native_samples(target: torch.Tensor) -> list:
        """MMSeg's data samples of int64[N, H, W] trainIds: one ``SegDataSample`` per image with ``gt_sem_seg``
        and ``img_shape = pad_shape = ori_shape = (H, W)``."""
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample

        h, w = target.shape[-2:]
        samples = []
        for mask in target:
            sample = SegDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w)))
            sample.gt_sem_seg = PixelData(data=mask[None].long())
            samples.append(sample)
        return samples

    def native_loss(self, images: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The segmentor's own training loss (``lossfunction=[native]``): MMSeg's ``loss()`` as its config defines it.
        For Mask2Former that is the set-prediction loss of Cheng et al., "Masked-attention Mask Transformer for
        Universal Image Segmentation" (CVPR 2022): queries matched to the ground-truth segments (one per class
        present) by the Hungarian algorithm, then class cross-entropy (the "no object" class down-weighted) + mask
        binary cross-entropy + Dice on sampled points, on the last decoder layer and every intermediate one; for
        per-pixel heads their ``loss_decode`` (and the auxiliary heads').

        Args:
            images: float[N, 3, H, W], normalised as the model's input.
            target: int64[N, H, W] trainIds; the heads' ``ignore_index`` (255 in MMSeg's configs) is not scored.

        Returns:
            (total: the sum MMSeg's ``parse_losses`` forms, {kind: float[] detached}): the parts summed over decoder
            layers and heads by kind, e.g. ``{"cls", "mask", "dice"}`` for Mask2Former, ``{"ce"}`` for an FCN head.
        """
        losses = self.segmentor.loss(images, self.native_samples(target))
        total, _ = self.segmentor.parse_losses(losses)
        parts: dict[str, torch.Tensor] = {}
        for key, value in losses.items():
            if "loss" in key:  # MMSeg also returns accuracies (decode.acc_seg)
                kind = key.rsplit(".", 1)[-1].removeprefix("loss_")
                value = sum(value) if isinstance(value, (list, tuple)) else value
                parts[kind] = parts.get(kind, 0) + value.detach().float()
        return total, parts

    def load_pretrained(self, path_or_name: str | os.PathLike) -> None:
        """Load a local MMSeg checkpoint into the segmentor; class-count mismatches in heads are skipped.

        Raises:
            FileNotFoundError: the file does not exist (nothing is downloaded).
            ValueError: no key of the checkpoint matches the segmentor.
        """
        path = Path(path_or_name)
        if not path.is_file():
            raise FileNotFoundError(
                f"MMSeg checkpoint {path} not found; download it yourself (e.g. from the "
                f"MMSeg model zoo) into ${{environment.weights_dir}} and give its path"
            )
        state = read_state_dict(path)
        own = self.segmentor.state_dict()
        fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not fit:
            raise ValueError(f"{path}: no key matches {self.config_path.name} (e.g. {list(state)[:3]})")
        skipped = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
        unexpected = sorted(k for k in state if k not in own)
        missing = self.segmentor.load_state_dict(fit, strict=False).missing_keys
        self.load_report = {
            "loaded": len(fit),
            "missing": list(missing),
            "unexpected": unexpected,
            "skipped_shape": skipped,
        }
        logging.getLogger("segbench").info(
            f"{path.name}: loaded {len(fit)} tensors; {len(missing)} missing {list(missing)[:4]}, "
            f"{len(unexpected)} unexpected {unexpected[:4]}, {len(skipped)} skipped for shape (class count) "
            f"{skipped[:4]}"
        )
