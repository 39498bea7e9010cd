"""ESPNet and ESPNet-C (Mehta et al., "ESPNet: Efficient Spatial Pyramid of Dilated Convolutions for Semantic
Segmentation", ECCV 2018), written so that the authors' checkpoints (github.com/sacmehta/ESPNet,
``pretrained/{encoder,decoder}/espnet_p_2_q_{3,5,8}[_camvid].pth``) load strictly.

Module names follow the authors' ``train/Model.py`` (``level1``, ``b1``, ``level2_0``, ``level2.<i>``, ...,
``classifier``; decoder ``level3_C``, ``br``, ``conv``, ``up_l3``, ``combine_l2_l3``, ``up_l2``); this is an
independent implementation of the same graph (BatchNorm eps 1e-3, PReLU, ESP modules with the five dilated
branches d = 1, 2, 4, 8, 16 and hierarchical feature fusion).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from models.checkpoint import read_state_dict
from models.espnet.common import build_input_convention, load_author_checkpoint, pad_to_multiple, resolve_weights

BN_EPS = 1e-3
SKIP_CHANNELS = {"level1_cat": 19, "level1": 16}


class CBR(nn.Module):
    """Conv(k, stride, no bias) + BatchNorm + PReLU; float[N,nIn,H,W] -> float[N,nOut,H/stride,W/stride]."""

    def __init__(self, n_in: int, n_out: int, k: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, k, stride=stride, padding=(k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(n_out, eps=BN_EPS)
        self.act = nn.PReLU(n_out)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class BR(nn.Module):
    """BatchNorm + PReLU."""

    def __init__(self, n: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(n, eps=BN_EPS)
        self.act = nn.PReLU(n)

    def forward(self, x):
        return self.act(self.bn(x))


class C(nn.Module):
    """Conv(k, stride, dilation, no bias) with 'same' padding."""

    def __init__(self, n_in: int, n_out: int, k: int, stride: int = 1, d: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, k, stride=stride, padding=(k - 1) // 2 * d, dilation=d, bias=False)

    def forward(self, x):
        return self.conv(x)


class ESPModule(nn.Module):
    """The ESP module: reduce (1x1, or 3x3 stride 2 when down-sampling) -> split into 5 dilated 3x3 branches
    (d = 1, 2, 4, 8, 16) -> hierarchical feature fusion (cumulative sums of d2..d16) -> concat -> BN-PReLU.

    ``down=True`` is the authors' ``DownSamplerB`` (BN/PReLU as ``bn``/``act``), ``down=False`` their
    ``DilatedParllelResidualBlockB`` (``bn`` is a BR; identity residual when ``add``).
    """

    def __init__(self, n_in: int, n_out: int, down: bool = False, add: bool = True):
        super().__init__()
        n = n_out // 5
        n1 = n_out - 4 * n
        self.down = down
        self.c1 = C(n_in, n, 3, 2) if down else C(n_in, n, 1, 1)
        self.d1 = C(n, n1, 3, 1, 1)
        self.d2 = C(n, n, 3, 1, 2)
        self.d4 = C(n, n, 3, 1, 4)
        self.d8 = C(n, n, 3, 1, 8)
        self.d16 = C(n, n, 3, 1, 16)
        if down:
            self.bn = nn.BatchNorm2d(n_out, eps=BN_EPS)
            self.act = nn.PReLU(n_out)
        else:
            self.bn = BR(n_out)
        self.add = add and not down and n_in == n_out

    def forward(self, x):
        o = self.c1(x)
        add1 = self.d2(o)
        add2 = add1 + self.d4(o)
        add3 = add2 + self.d8(o)
        add4 = add3 + self.d16(o)
        out = torch.cat([self.d1(o), add1, add2, add3, add4], 1)
        if self.add:
            out = x + out
        return self.act(self.bn(out)) if self.down else self.bn(out)


class InputProjection(nn.Module):
    """``times`` x AvgPool(3, stride 2, pad 1): the image at 1/2**times resolution (authors' InputProjectionA)."""

    def __init__(self, times: int):
        super().__init__()
        self.pool = nn.ModuleList(nn.AvgPool2d(3, stride=2, padding=1) for _ in range(times))

    def forward(self, x):
        for p in self.pool:
            x = p(x)
        return x


class ESPNetEncoder(nn.Module):
    """ESPNet-C: float[N,3,H,W] -> logits float[N,classes,H/8,W/8] (H, W multiples of 8).

    ``forward_features`` also returns the 1/2 and 1/4 maps the decoder uses.
    """

    def __init__(self, classes: int, p: int = 2, q: int = 8):
        super().__init__()
        self.level1 = CBR(3, 16, 3, 2)
        self.sample1 = InputProjection(1)
        self.sample2 = InputProjection(2)
        self.b1 = BR(16 + 3)
        self.level2_0 = ESPModule(16 + 3, 64, down=True)
        self.level2 = nn.ModuleList(ESPModule(64, 64) for _ in range(p))
        self.b2 = BR(128 + 3)
        self.level3_0 = ESPModule(128 + 3, 128, down=True)
        self.level3 = nn.ModuleList(ESPModule(128, 128) for _ in range(q))
        self.b3 = BR(256)
        self.classifier = C(256, classes, 1, 1)

    def forward_features(self, x):
        """Returns (logits at 1/8, ``output1_cat`` [N,131,H/4,W/4], ``output0_cat`` [N,19,H/2,W/2],
        ``output0`` [N,16,H/2,W/2])."""
        out0 = self.level1(x)
        out0_cat = self.b1(torch.cat([out0, self.sample1(x)], 1))
        out1_0 = self.level2_0(out0_cat)
        out1 = out1_0
        for layer in self.level2:
            out1 = layer(out1)
        out1_cat = self.b2(torch.cat([out1, out1_0, self.sample2(x)], 1))
        out2_0 = self.level3_0(out1_cat)
        out2 = out2_0
        for layer in self.level3:
            out2 = layer(out2)
        out2_cat = self.b3(torch.cat([out2_0, out2], 1))
        return self.classifier(out2_cat), out1_cat, out0_cat, out0

    def forward(self, x):
        return self.forward_features(x)[0]


class ESPNet(nn.Module):
    """ESPNet (with the RUM-based light decoder) or ESPNet-C (``decoder=False``) as a segbench model.

    Args:
        num_classes: K, the classes of the dataset (``${dataset.num_classes}``).
        p: ESP modules at level 2 (authors' checkpoints: p=2).
        q: ESP modules at level 3 (authors' checkpoints: q=3/5/8).
        decoder: True = ESPNet (full-resolution logits), False = ESPNet-C (logits at 1/8, resized by the
            loss and inference code).
        extra_classes: extra output channels of the checkpoint beyond K (the authors' Cityscapes/CamVid
            checkpoints have one "ignore" output: 20 = 19 + 1, 12 = 11 + 1). They are computed but dropped
            from ``"out"`` (i.e. dropped at argmax time), so predictions are always in ``[0, K)``.
        input_conventions: ``{dataset name or "*": {channel_order, mean, std, value_range, divisor}}``:
            the preprocessing the checkpoints were trained with (see :class:`InputConvention`); None or {}
            feeds the dataset-normalised input unchanged.
        data_norm: ``{"name", "mean", "std"}`` of the dataset config (what the pipeline feeds).
        decoder_skip: the 1/2-resolution map concatenated in the decoder's last stage: ``"level1_cat"``
            (19 ch = level-1 features + image; authors' ``train/Model.py``, the CamVid checkpoint) or
            ``"level1"`` (16 ch; ``test/Model.py``, the Cityscapes checkpoints). :meth:`load_pretrained`
            switches to the variant the checkpoint has.
        pretrained: optional checkpoint (path, or name under ``<weights_dir>/espnet/``) loaded at build time.
        weights_dir: ``${environment.weights_dir}``.

    Input float[N,3,H,W] (any H, W: zero-padded to multiples of 8 and cropped back); output
    ``{"out": float[N,K,H,W]}`` (ESPNet) or ``{"out": float[N,K,ceil(H/8),ceil(W/8)]}`` (ESPNet-C).

    Raises:
        ValueError: K < 1 or extra_classes < 0; a checkpoint that does not fit (see :meth:`load_pretrained`).
        FileNotFoundError: ``pretrained`` not found (names the expected file and ``${environment.weights_dir}``).
    """

    output_names = ("out",)
    stride = 8

    def __init__(
        self,
        num_classes: int,
        p: int = 2,
        q: int = 8,
        decoder: bool = True,
        extra_classes: int = 0,
        input_conventions: Mapping | None = None,
        data_norm: Mapping | None = None,
        decoder_skip: str = "level1_cat",
        pretrained: str | None = None,
        weights_dir: str | None = None,
    ):
        super().__init__()
        if decoder_skip not in SKIP_CHANNELS:
            raise ValueError(f"ESPNet: decoder_skip={decoder_skip!r}; valid: {sorted(SKIP_CHANNELS)}")
        if num_classes < 1 or extra_classes < 0:
            raise ValueError(f"ESPNet: num_classes={num_classes} must be >= 1 and extra_classes={extra_classes} >= 0")
        self.num_classes, self.extra_classes, self.p, self.q, self.decoder = num_classes, extra_classes, p, q, decoder
        self.weights_dir = weights_dir
        self.describe = f"{'ESPNet' if decoder else 'ESPNet-C'} p={p} q={q} outputs={num_classes + extra_classes}"
        classes = num_classes + extra_classes
        self.input_convention = build_input_convention(input_conventions, data_norm) or nn.Identity()
        self.encoder = ESPNetEncoder(classes, p, q)
        if decoder:
            self.level3_C = C(128 + 3, classes, 1, 1)
            self.br = nn.BatchNorm2d(classes, eps=BN_EPS)
            self.decoder_skip = decoder_skip
            self.conv = CBR(SKIP_CHANNELS[decoder_skip] + classes, classes, 3, 1)
            self.up_l3 = nn.Sequential(nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False))
            self.combine_l2_l3 = nn.Sequential(BR(2 * classes), ESPModule(2 * classes, classes, add=False))
            self.up_l2 = nn.Sequential(nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False), BR(classes))
            self.classifier = nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False)
        if pretrained:
            self.load_pretrained(pretrained)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """float[N,3,H,W] dataset-normalised -> ``{"out": logits float[N,K,h,w]}`` (see class doc)."""
        x, (h, w) = pad_to_multiple(x, self.stride)  # before the convention, as an exported graph's runner pads
        x = self.input_convention(x)
        logits, out1_cat, out0_cat, out0 = self.encoder.forward_features(x)
        if self.decoder:
            out2_c = self.up_l3(self.br(logits))
            comb = self.up_l2(self.combine_l2_l3(torch.cat([self.level3_C(out1_cat), out2_c], 1)))
            skip = out0_cat if self.decoder_skip == "level1_cat" else out0
            logits = self.classifier(self.conv(torch.cat([comb, skip], 1)))
            logits = logits[..., :h, :w]
        else:
            logits = logits[..., : -(-h // 8), : -(-w // 8)]
        return {"out": logits[:, : self.num_classes]}

    def load_pretrained(self, path_or_name: str | os.PathLike) -> None:
        """Load an authors' checkpoint (sacmehta/ESPNet ``pretrained/``) strictly.

        ``decoder/*.pth`` files fit ``decoder=True`` (``decoder_skip`` follows the file); ``encoder/*.pth``
        (ESPNet-C) files fit ``decoder=False`` through the explicit key map ``k -> "encoder." + k``.

        Raises:
            FileNotFoundError: the file is missing (expected path and ``${environment.weights_dir}`` named).
            ValueError: missing/unexpected keys or shape mismatches (e.g. wrong q, or 20 vs 12 outputs).
        """
        path = resolve_weights(path_or_name, self.weights_dir, "espnet")
        state = read_state_dict(path)
        prefixed = any(k.startswith(("encoder.", "module.encoder.")) for k in state)
        conv_w = state.get("conv.conv.weight")
        if self.decoder and conv_w is not None:
            skip = {c: name for name, c in SKIP_CHANNELS.items()}.get(conv_w.shape[1] - self.conv.conv.out_channels)
            if skip is not None and skip != self.decoder_skip:
                classes = self.conv.conv.out_channels
                self.decoder_skip = skip
                self.conv = CBR(SKIP_CHANNELS[skip] + classes, classes, 3, 1).to(self.encoder.b1.bn.weight.device)
        load_author_checkpoint(self, path, None if prefixed else (lambda k: f"encoder.{k}"))
