"""segmentation-models-pytorch (Iakubovskii, https://github.com/qubvel-org/segmentation_models.pytorch) wrapper.

``model=smp model.arch=FPN model.encoder=resnet34`` builds any smp architecture with any smp/timm
encoder, adapted to the segbench model contract (dict of logits, ``output_names = ("out",)``).
Encoder weights come by registry name, path or hub tag (:mod:`models.pretrained`); the input normalisation
those weights expect (``input_norm``, filled from the weights at compose time) is applied inside the model by
:class:`models.normalization.InputConvention`, so every entry point feeds the encoder the same tensors.
Inputs whose height/width are not divisible by 32 are zero-padded at the bottom/right (after normalisation)
and the logits cropped back, so any image size works (PAN's feature-pyramid attention additionally needs
inputs of at least 128 px per side).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from models import pretrained
from models.normalization import InputConvention

SMP_ARCHITECTURES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        smp.Unet,
        smp.UnetPlusPlus,
        smp.FPN,
        smp.PSPNet,
        smp.DeepLabV3,
        smp.DeepLabV3Plus,
        smp.Linknet,
        smp.MAnet,
        smp.PAN,
        smp.UPerNet,
        smp.Segformer,
        smp.DPT,
    )
}


def _encoder_names() -> list[str]:
    return sorted(smp.encoders.get_encoder_names())


class SMPModel(nn.Module):
    """Any segmentation-models-pytorch architecture as a segbench model.

    Args:
        arch: architecture class name, one of :data:`SMP_ARCHITECTURES` (Unet, UnetPlusPlus, FPN, PSPNet,
            DeepLabV3, DeepLabV3Plus, Linknet, MAnet, PAN, UPerNet, Segformer, DPT).
        encoder: smp encoder name (``resnet18``, ``mit_b2``, ...) or a timm encoder as ``tu-<timm name>``.
        num_classes: K, number of output channels.
        encoder_weights: ``None`` (random init, default), a registry name (``config/pretrained/<name>.yaml``,
            e.g. ``efficientnet_lite0_imagenet``), a local encoder state dict, or ``hub[:<weights>]`` (timm/smp
            weights from the Hugging Face hub cache; honours ``HF_HUB_OFFLINE=1``). See :mod:`models.pretrained`.
        in_channels: input channels (3).
        input_norm: ``{"mean", "std"}`` (3 floats each, RGB, 0..1 scale) the encoder weights expect, or None
            to feed the dataset-normalised input unchanged. The config fills it from ``encoder_weights``
            (``${pretrained_norm:...}``), so a saved run keeps it when the weights are not reloaded.
        data_norm: ``{"mean", "std"}`` of the dataset normalising the input (``${dataset.mean}``, ...).
        weights_dir: ``${environment.weights_dir}``, where registry files without a package live.
        **kwargs: passed to the smp architecture (e.g. ``decoder_channels``, ``encoder_depth``).

    Input float[N, in_channels, H, W] of any H, W; output ``{"out": float[N, K, H, W]}``.

    Attributes:
        pretrained_cfg: ``{"weights", "file", "sha256", "source", "licence", "mean", "std"}`` of the loaded
            encoder weights, None for random init.

    Raises:
        ValueError: unknown ``arch`` or ``encoder`` (the message lists the valid names); weights that do not
            fit the encoder (one line naming the file, expected vs found tensors).
        FileNotFoundError: a weights file or weights package is missing.
    """

    output_names = ("out",)

    def __init__(
        self,
        arch: str,
        encoder: str,
        num_classes: int,
        encoder_weights: str | None = None,
        in_channels: int = 3,
        input_norm: Mapping | None = None,
        data_norm: Mapping | None = None,
        weights_dir: str | None = None,
        **kwargs,
    ):
        super().__init__()
        if arch not in SMP_ARCHITECTURES:
            raise ValueError(f"unknown smp architecture {arch!r}; valid: {sorted(SMP_ARCHITECTURES)}")
        if not encoder.startswith("tu-") and encoder not in smp.encoders.get_encoder_names():
            raise ValueError(f"unknown smp encoder {encoder!r}; valid: {_encoder_names()} or 'tu-<timm model>'")
        self.arch, self.encoder_name, self.num_classes = arch, encoder, num_classes
        kind = pretrained.classify(encoder_weights)
        self.net = SMP_ARCHITECTURES[arch](
            encoder_name=encoder,
            encoder_weights=pretrained.hub_weights(encoder_weights, encoder),
            in_channels=in_channels,
            classes=num_classes,
            **kwargs,
        )
        self.pretrained_cfg = None
        if kind in ("name", "path"):
            self.pretrained_cfg = pretrained.load_encoder_weights(
                self.net.encoder, encoder, encoder_weights, weights_dir
            )
        elif kind == "hub":
            self.pretrained_cfg = {
                "weights": encoder_weights,
                **(pretrained.input_norm(encoder_weights, encoder) or {}),
            }
        if self.pretrained_cfg is not None and input_norm:
            self.pretrained_cfg.update(mean=list(input_norm["mean"]), std=list(input_norm["std"]))
        self.input_norm = nn.Identity()
        if input_norm and data_norm:
            self.input_norm = InputConvention(
                data_norm["mean"], data_norm["std"], input_norm["mean"], input_norm["std"]
            )
        # Pad to a multiple of 32 (or the encoder's output stride if larger): every smp decoder accepts it,
        # including DPT whose ViT features are merged at 1/32; dilated encoders just pad a little more.
        self.stride = max(32, int(getattr(self.net.encoder, "output_stride", 32)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """float[N,3,H,W] dataset-normalised -> ``{"out": logits float[N,K,H,W]}``.

        H and W are zero-padded at the bottom/right to multiples of ``stride`` in the dataset-normalised space,
        before ``input_norm``: an exported graph (traced at an aligned size, padded by its runner) then computes
        exactly what this module computes.
        """
        h, w = x.shape[-2:]
        ph, pw = math.ceil(h / self.stride) * self.stride - h, math.ceil(w / self.stride) * self.stride - w
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        out = self.net(self.input_norm(x))
        return {"out": out[..., :h, :w] if (ph or pw) else out}
