"""Robustness to corrupted inputs: mean and relative performance under corruption (mPC, rPC).

With ``P_{c,s}`` the mIoU on the images corrupted by corruption ``c`` at severity ``s`` and ``P_clean`` the mIoU on
the clean images (Michaelis et al., "Benchmarking Robustness in Object Detection: Autonomous Driving when Winter is
Coming", 2019; mIoU as the performance measure for segmentation as in Kamann & Rother, "Benchmarking the
Robustness of Semantic Segmentation Models", CVPR 2020 / IJCV 2021):

* ``mPC = (1/N_c) Σ_c (1/N_s) Σ_s P_{c,s}`` over the ``N_c`` corruptions and ``N_s`` severities evaluated (the
  benchmark: 15 x 5);
* ``rPC = mPC / P_clean`` (reported in %);
* per corruption, ``(1/N_s) Σ_s P_{c,s}``.

Unlike the mCE of Hendrycks & Dietterich (ICLR 2019), no reference model normalises the errors, so the figures need
no baseline run and are comparable between models evaluated on the same corruptions, severities and images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def robustness_metrics(clean_miou: float, miou: Mapping[tuple[str, int], float]) -> dict:
    """mPC, rPC and the per-corruption means of a complete corruption x severity grid.

    Args:
        clean_miou: ``P_clean``, mIoU on the clean images (0..1).
        miou: ``{(corruption, severity): mIoU}`` (0..1), every corruption at the same severities.

    Returns:
        ``{"mPC", "rPC", "mIoU_corruption": {corruption: mean over severities}, "corruptions": [...],
        "severities": [...]}``; mPC and the means on mIoU's 0..1 scale, rPC a ratio (x 100 = %); rPC is None when
        the clean mIoU is 0 or NaN.

    Raises:
        ValueError: an empty grid, or corruptions evaluated at different severities.
    """
    if not miou:
        raise ValueError("robustness_metrics: no corrupted evaluation")
    corruptions = list(dict.fromkeys(c for c, _ in miou))
    severities = sorted({int(s) for _, s in miou})
    for c in corruptions:
        got = sorted(int(s) for k, s in miou if k == c)
        if got != severities:
            raise ValueError(f"robustness_metrics: corruption {c!r} has severities {got}, others {severities}")
    per = {c: sum(float(miou[(c, s)]) for s in severities) / len(severities) for c in corruptions}
    mpc = sum(per.values()) / len(per)
    clean = float(clean_miou)
    rpc = None if not clean or math.isnan(clean) else mpc / clean
    return {"mPC": mpc, "rPC": rpc, "mIoU_corruption": per, "corruptions": corruptions, "severities": severities}
