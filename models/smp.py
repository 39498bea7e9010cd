"""segmentation-models-pytorch (Iakubovskii, https://github.com/qubvel-org/segmentation_models.pytorch) wrapper.

``model=smp model.arch=FPN model.encoder=resnet34`` builds any smp architecture with any smp/timm
encoder, adapted to the segbench model contract (dict of logits, ``output_names = ("out",)``).
Inputs whose height/width are not divisible by 32 are zero-padded at the bottom/right (after
normalisation, i.e. with the dataset mean) and the logits cropped back, so any image size works
(PAN's feature-pyramid attention additionally needs inputs of at least 128 px per side).
"""

from __future__ import annotations

import math
import os

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from models.checkpoint import read_state_dict

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
        encoder_weights: ``None`` (random init, default) or a local file with the encoder's state dict
            (keys as in ``model.encoder.state_dict()``). Names such as ``"imagenet"`` would download
            and are refused: nothing is fetched at run time.
        in_channels: input channels (3).
        **kwargs: passed to the smp architecture (e.g. ``decoder_channels``, ``encoder_depth``).

    Input float[N, in_channels, H, W] of any H, W; output ``{"out": float[N, K, H, W]}``.

    Raises:
        ValueError: unknown ``arch`` or ``encoder`` (the message lists the valid names), or an
            ``encoder_weights`` value that is not an existing local file.
    """

    output_names = ("out",)

    def __init__(
        self,
        arch: str,
        encoder: str,
        num_classes: int,
        encoder_weights: str | None = None,
        in_channels: int = 3,
        **kwargs,
    ):
        super().__init__()
        if arch not in SMP_ARCHITECTURES:
            raise ValueError(f"unknown smp architecture {arch!r}; valid: {sorted(SMP_ARCHITECTURES)}")
        if not encoder.startswith("tu-") and encoder not in smp.encoders.get_encoder_names():
            raise ValueError(f"unknown smp encoder {encoder!r}; valid: {_encoder_names()} or 'tu-<timm model>'")
        self.arch, self.encoder_name, self.num_classes = arch, encoder, num_classes
        self.net = SMP_ARCHITECTURES[arch](
            encoder_name=encoder, encoder_weights=None, in_channels=in_channels, classes=num_classes, **kwargs
        )
        if encoder_weights is not None:
            self.load_encoder_weights(encoder_weights)
        # Pad to a multiple of 32 (or the encoder's output stride if larger): every smp decoder accepts it,
        # including DPT whose ViT features are merged at 1/32; dilated encoders just pad a little more.
        self.stride = max(32, int(getattr(self.net.encoder, "output_stride", 32)))

    def load_encoder_weights(self, path: str) -> None:
        """Load a local encoder state dict (``.pth``/``.pt``; a dict with ``state_dict`` is unwrapped).

        Raises:
            ValueError: ``path`` is not an existing file (pretrained names are not downloaded).
        """
        if not os.path.isfile(str(path)):
            raise ValueError(
                f"model.encoder_weights={path!r} is not a local file; segbench never downloads weights. "
                f"Save the encoder's state dict (e.g. from timm/smp on a machine with network) and give its path."
            )
        state = read_state_dict(path)
        # nn.Module.load_state_dict directly: some smp encoders override it and return None.
        missing, _ = nn.Module.load_state_dict(self.net.encoder, state, strict=False)
        if missing:
            raise ValueError(f"{path}: {len(missing)} encoder keys missing, e.g. {missing[:5]}")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        ph, pw = math.ceil(h / self.stride) * self.stride - h, math.ceil(w / self.stride) * self.stride - w
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        out = self.net(x)
        return {"out": out[..., :h, :w] if (ph or pw) else out}
