"""Building blocks of SegMAN (Fu et al., CVPR 2025) in pure PyTorch: neighbourhood attention and selective scan."""

from models.segman.neighborhood_attention import (
    na2d,
    na2d_av,
    na2d_qk,
    neighborhood_indices,
    neighborhood_rpb_indices,
)
from models.segman.selective_scan import cross_merge, cross_scan, selective_scan, selective_scan_reference

__all__ = [
    "cross_merge",
    "cross_scan",
    "na2d",
    "na2d_av",
    "na2d_qk",
    "neighborhood_indices",
    "neighborhood_rpb_indices",
    "selective_scan",
    "selective_scan_reference",
]
