"""SegMAN Encoder (Fu et al., CVPR 2025): a convolutional stem and four stages of LASS blocks.

LASS (Local Attention and State Space) token mixer, per block (official ``Attention`` of ``segman_encoder.py``):

1. a 1x1 conv gives ``q, k, v`` (heads-major channels); a 5x5 depth-wise conv of ``v`` is the locally enhanced
   positional encoding (LePE) added to the output;
2. ``q`` and ``k`` are rotated by the 2-D RoPE; neighbourhood attention (NAT, Hassani et al., CVPR 2023) with a
   ``k x k`` window and relative position bias gives the local context;
3. stages 1-3: depth-wise 3x3 conv + BN, SiLU, SS2D (VMamba's four-direction selective scan) and LayerNorm turn
   the attention output into global context, added back to it; stage 4 (1/32): full self-attention over all
   positions with a learned (heads, 49, 49) position bias, resized bicubically to (HW, HW), reads the
   neighbourhood-attention output as values (the official ``global_mode``);
4. a 1x1 conv projects the sum.

Attention scaling: ``q`` is multiplied by ``head_dim ** -0.5`` once, before both the neighbourhood and the global
attention, so both logits are the scaled dot product of the paper. This is the official unfused path (``na2d_qk``
on the pre-scaled ``q``), which the released configurations run (``fused_na`` defaults to False); the official fused
path would pass ``scale = head_dim ** 0.5`` on the already scaled ``q`` and drop the relative position bias, which is
not followed here.

Blocks are pre-norm with a 3x3 depth-wise conditional positional encoding before each half:
``x += cpe1(x); x += ls1(LASS(norm1(x))); x += cpe2(x); x += ls2(FFN(norm2(x)))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import Tensor, nn

from models.segman.layers import ConvFFN, LayerNorm2d, LayerScale, apply_rope, rope_2d
from models.segman.neighborhood_attention import na2d_av, na2d_qk
from models.segman.ss2d import SS2D
from models.segman.variants import SegMANVariant

__all__ = ["LASS", "LASSBlock", "SegMANEncoder"]

#: side of the (pre-training) 1/32 map the stage-4 global position bias is stored at (224 / 32)
GLOBAL_BIAS_SIDE = 7


class LASS(nn.Module):
    """Local attention + state-space token mixer of one SegMAN block.

    Args:
        dim: C.
        num_heads: heads (``C / heads`` divisible by 4).
        window_size: odd neighbourhood window ``k``.
        global_attention: stage-4 form (full attention after the neighbourhood attention) instead of SS2D.
        scan_chunk_size: see :class:`models.segman.ss2d.SS2D`.

    Input and output float[N, C, H, W]; H and W must be at least ``window_size`` (ValueError from the
    neighbourhood attention otherwise).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, global_attention: bool, scan_chunk_size: int = 16):
        super().__init__()
        self.num_heads, self.head_dim, self.window_size = num_heads, dim // num_heads, window_size
        self.scale = self.head_dim**-0.5
        self.global_attention = global_attention
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.lepe = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.proj = nn.Conv2d(dim, dim, 1)
        self.rpb = nn.Parameter(torch.zeros(num_heads, 2 * window_size - 1, 2 * window_size - 1))
        if global_attention:
            side = GLOBAL_BIAS_SIDE**2
            self.global_rpb = nn.Parameter(torch.zeros(num_heads, side, side))
        else:
            self.ssm_conv = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, groups=dim), nn.BatchNorm2d(dim))
            self.ss2d = SS2D(dim, d_state=1, scan_chunk_size=scan_chunk_size)
            self.ssm_norm = LayerNorm2d(dim)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(x)
        lepe = self.lepe(qkv[:, 2 * c :])
        q, k, v = qkv.view(n, 3, self.num_heads, self.head_dim, h, w).permute(1, 0, 2, 4, 5, 3)  # (N, heads, H, W, d)
        sin, cos = rope
        q = apply_rope(q, sin, cos) * self.scale
        k = apply_rope(k, sin, cos)
        attn = na2d_qk(q, k, self.window_size, 1, self.rpb).softmax(dim=-1)
        local = na2d_av(attn, v, self.window_size, 1)  # (N, heads, H, W, d)
        if self.global_attention:
            q, k, local = (t.flatten(2, 3) for t in (q, k, local))  # (N, heads, HW, d)
            bias = F.interpolate(self.global_rpb[None], size=(h * w, h * w), mode="bicubic", align_corners=False)
            weights = (q @ k.transpose(-2, -1) + bias).softmax(dim=-1)
            out = (weights @ local).transpose(-2, -1).reshape(n, c, h, w)
        else:
            local = local.permute(0, 1, 4, 2, 3).reshape(n, c, h, w)
            context = self.ss2d(F.silu(self.ssm_conv(local)))
            out = self.ssm_norm(context) + local
        return self.proj(out + lepe)


class LASSBlock(nn.Module):
    """One SegMAN encoder block (pre-norm LASS + convolutional FFN, each after a depth-wise CPE).

    Args:
        dim: C.
        num_heads: heads.
        window_size: neighbourhood window.
        mlp_ratio: FFN hidden width ``int(mlp_ratio * C)``.
        global_attention: stage-4 form of :class:`LASS`.
        layerscale: LayerScale on both residual branches.
        layer_init_value: LayerScale initial weight.
        drop_path: stochastic-depth rate of both branches.
        scan_chunk_size: see :class:`models.segman.ss2d.SS2D`.

    Input and output float[N, C, H, W].
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        global_attention: bool,
        layerscale: bool,
        layer_init_value: float,
        drop_path: float = 0.0,
        scan_chunk_size: int = 16,
    ):
        super().__init__()
        self.cpe1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = LayerNorm2d(dim)
        self.mixer = LASS(dim, num_heads, window_size, global_attention, scan_chunk_size)
        self.cpe2 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm2 = LayerNorm2d(dim)
        self.ffn = ConvFFN(dim, int(mlp_ratio * dim))
        self.gamma1 = LayerScale(dim, layer_init_value) if layerscale else nn.Identity()
        self.gamma2 = LayerScale(dim, layer_init_value) if layerscale else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        x = x + self.cpe1(x)
        x = x + self.drop_path(self.gamma1(self.mixer(self.norm1(x), rope)))
        x = x + self.cpe2(x)
        return x + self.drop_path(self.gamma2(self.ffn(self.norm2(x))))


class SegMANStage(nn.Module):
    """A stage of LASS blocks sharing one RoPE table; input and output float[N, C, H, W]."""

    def __init__(self, blocks: list[LASSBlock], head_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head_dim = head_dim

    def forward(self, x: Tensor) -> Tensor:
        rope = rope_2d(self.head_dim, x.shape[2], x.shape[3], x.device, x.dtype)
        for block in self.blocks:
            x = block(x, rope)
        return x


def _stem(out_channels: int) -> nn.Sequential:
    """Four 3x3 conv-BN layers (strides 2, 1, 2, 1; GELU between them): float[N,3,H,W] -> float[N,C,H/4,W/4]."""
    mid = out_channels // 2
    layers: list[nn.Module] = []
    for c_in, c_out, stride in ((3, mid, 2), (mid, mid, 1), (mid, out_channels, 2), (out_channels, out_channels, 1)):
        layers += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.GELU()]
    return nn.Sequential(*layers[:-1])


class SegMANEncoder(nn.Module):
    """SegMAN Encoder: stem (stride 4) and four LASS stages joined by stride-2 3x3 conv-BN downsampling.

    Args:
        variant: the stage widths, depths, heads, windows and FFN ratios (:mod:`models.segman.variants`).
        drop_path_rate: stochastic depth, rising linearly over all blocks from 0 (0 in the official segmentation
            configs).
        scan_chunk_size: see :class:`models.segman.ss2d.SS2D`.

    Input float[N, 3, H, W] with H, W multiples of 32 and at least ``variant.min_input_size`` (the windows must
    fit each map); output: the four stage maps float[N, C_i, H / 2^(i+2), W / 2^(i+2)], i = 0..3.
    """

    def __init__(self, variant: SegMANVariant, drop_path_rate: float = 0.0, scan_chunk_size: int = 16):
        super().__init__()
        v = variant
        self.stem = _stem(v.embed_dims[0])
        total = sum(v.depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linear in depth, from 0
        self.stages, self.downsamples = nn.ModuleList(), nn.ModuleList()
        for i, (dim, depth, heads, window, ratio) in enumerate(
            zip(v.embed_dims, v.depths, v.num_heads, v.window_sizes, v.mlp_ratios)
        ):
            first = sum(v.depths[:i])
            blocks = [
                LASSBlock(dim, heads, window, ratio, i == 3, v.layerscale, v.layer_init_value, rate, scan_chunk_size)
                for rate in rates[first : first + depth]
            ]
            self.stages.append(SegMANStage(blocks, dim // heads))
            if i < 3:
                nxt = v.embed_dims[i + 1]
                self.downsamples.append(nn.Sequential(nn.Conv2d(dim, nxt, 3, 2, 1, bias=False), nn.BatchNorm2d(nxt)))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """The official encoder initialisation: truncated normal (std 0.02) convs/linears, zero biases, unit norms."""
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            features.append(x)
            if i < len(self.downsamples):
                x = self.downsamples[i](x)
        return features
