"""SegMAN (Fu et al., CVPR 2025) in pure PyTorch: the segmentor (:class:`SegMAN`, variants T/S/B), its encoder and
MMSCopE decoder, and the building blocks (neighbourhood attention, selective scan, SS2D)."""

from models.segman.model import SegMAN
from models.segman.neighborhood_attention import (
    na2d,
    na2d_av,
    na2d_qk,
    neighborhood_indices,
    neighborhood_rpb_indices,
)
from models.segman.selective_scan import cross_merge, cross_scan, selective_scan, selective_scan_reference
from models.segman.variants import VARIANTS, get_variant

__all__ = [
    "VARIANTS",
    "SegMAN",
    "cross_merge",
    "cross_scan",
    "get_variant",
    "na2d",
    "na2d_av",
    "na2d_qk",
    "neighborhood_indices",
    "neighborhood_rpb_indices",
    "selective_scan",
    "selective_scan_reference",
]
