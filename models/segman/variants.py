"""SegMAN-T / -S / -B hyper-parameters as data (Fu et al., CVPR 2025; official configs of yunxiangfu2001/SegMAN).

Encoder values follow ``SegMANEncoder_t`` / ``_s`` / ``_b`` of the official ``segman_encoder.py``; decoder values
(``channels``, ``feat_proj_dim``) follow ``local_configs/segman/{tiny,small,base}/segman_*_ade.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VARIANTS", "SegMANVariant", "get_variant"]


@dataclass(frozen=True)
class SegMANVariant:
    """One SegMAN size: four encoder stages (strides 4, 8, 16, 32) and the MMSCopE decoder widths.

    Attributes:
        embed_dims: channels of the four stages.
        depths: LASS blocks per stage.
        num_heads: attention heads per stage (``embed_dims[i] / num_heads[i]`` must be divisible by 4 for the 2-D
            rotary position embedding).
        window_sizes: odd neighbourhood-attention window per stage.
        mlp_ratios: feed-forward expansion per stage (hidden width ``int(ratio * dim)``).
        layerscale: learnable per-channel residual scaling (initialised to ``layer_init_value``) in every block.
        decoder_channels: MMSCopE width ``E`` (MMSeg ``channels``).
        feat_proj_dim: width ``P`` of the projected stage-2/3/4 features (``feat_proj_dim``).
        layer_init_value: LayerScale initial value.
    """

    embed_dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int]
    window_sizes: tuple[int, int, int, int]
    mlp_ratios: tuple[float, float, float, float]
    layerscale: bool
    decoder_channels: int
    feat_proj_dim: int
    layer_init_value: float = 1e-6

    @property
    def min_input_size(self) -> int:
        """Smallest input side (a multiple of 32) at which every stage's window fits its feature map."""
        need = max(k * 2 ** (i + 2) for i, k in enumerate(self.window_sizes))
        return -(-need // 32) * 32


# The paper's table read column-wise: one row per hyper-parameter, one column per size (T, S, B).
_NAMES = ("t", "s", "b")
_TABLE: dict[str, tuple] = {
    "embed_dims": ((32, 64, 144, 192), (64, 144, 288, 512), (96, 160, 364, 560)),
    "depths": ((2, 2, 4, 2), (2, 2, 10, 4), (4, 4, 18, 4)),
    "num_heads": ((1, 2, 4, 8), (2, 4, 8, 16), (4, 8, 13, 20)),
    "window_sizes": ((11, 9, 9, 7), (11, 9, 7, 7), (11, 9, 7, 7)),
    "mlp_ratios": ((4, 4, 3, 3), (4, 4, 3.4, 3.4), (4, 4, 3, 3)),
    "layerscale": (False, False, True),
    "decoder_channels": (128, 144, 180),
    "feat_proj_dim": (192, 288, 320),
}
VARIANTS: dict[str, SegMANVariant] = {
    name: SegMANVariant(**{field: values[i] for field, values in _TABLE.items()}) for i, name in enumerate(_NAMES)
}


def get_variant(name: str) -> SegMANVariant:
    """The hyper-parameters of SegMAN-``name`` (``t``, ``s`` or ``b``, case-insensitive).

    Raises:
        ValueError: an unknown name (the valid ones listed).
    """
    key = str(name).lower()
    if key not in VARIANTS:
        raise ValueError(f"SegMAN variant {name!r} is unknown; valid: {sorted(VARIANTS)}")
    return VARIANTS[key]
