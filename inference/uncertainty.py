"""Pictures of calibration and uncertainty: the reliability diagram (validation.py) and the per-pixel entropy map
(predict.py ``uncertainty=true``). matplotlib (Agg, no display) is imported when a picture is drawn.

Reliability diagram (Guo et al. 2017, "On Calibration of Modern Neural Networks", ICML, figure 1): for each of the
15 confidence bins of :mod:`metrics.calibration`, a bar of the fraction of its pixels predicted correctly at the
bin's position, the diagonal a perfectly calibrated model would follow, the gap between each bar and the bin's mean
confidence shaded, the pixel count at the foot of each bar, ECE and MCE in the title.

Entropy map: the normalised entropy ``H(p) / log K`` of each pixel (:func:`metrics.calibration.normalized_entropy`,
0 = one class certain, 1 = all classes equally likely) through the ``magma`` colour map (256 levels: value ``e``
has the colour of level ``round(255 e)``), at the photo's size, with a colour bar drawn in its right margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: colour map of the entropy map (dark: certain, bright: uncertain)
ENTROPY_CMAP = "magma"


def _count(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{int(n)}"


def reliability_diagram(panels: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Draw one reliability diagram per entry of ``panels`` side by side into a PNG.

    Args:
        panels: panel title -> the result of :meth:`metrics.calibration.SegmentationCalibration.compute`
            (``count``, ``conf_sum``, ``correct`` bins and ``ECE``/``MCE`` fractions).
        path: the PNG written.
        title: figure title above the panels (e.g. the dataset and split).

    Returns:
        ``path``.
    """
    from matplotlib.figure import Figure

    from metrics.calibration import reliability

    fig = Figure(figsize=(4.2 * len(panels), 4.4), dpi=110, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, res) in zip(axes, panels.items()):
        r = {k: v.numpy() for k, v in reliability(res["count"], res["conf_sum"], res["correct"]).items()}
        width, centre = r["upper"] - r["lower"], (r["lower"] + r["upper"]) / 2
        full = r["count"] > 0
        ax.bar(centre[full], r["accuracy"][full], width[full], color="tab:blue", edgecolor="black", label="accuracy")
        gap_lo = np.minimum(r["accuracy"], r["confidence"])[full]
        ax.bar(
            centre[full],
            np.abs(r["accuracy"] - r["confidence"])[full],
            width[full],
            bottom=gap_lo,
            color="tab:red",
            alpha=0.3,
            edgecolor="tab:red",
            hatch="//",
            label="gap to mean confidence",
        )
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        for x, n in zip(centre[full], r["count"][full]):  # pixels per bin, at the foot of its bar
            ax.text(x, 0.02, _count(n), ha="center", va="bottom", fontsize=6, rotation=90, color="white")
        ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="confidence (max probability)", ylabel="accuracy")
        ax.set_title(f"{name}\nECE {100 * res['ECE']:.2f} %, MCE {100 * res['MCE']:.2f} %", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path)
    return Path(path)


def entropy_rgb(entropy: np.ndarray, cmap: str = ENTROPY_CMAP) -> np.ndarray:
    """uint8[H, W, 3] colours of a normalised entropy map (module docstring).

    Args:
        entropy: float[H, W] in ``[0, 1]`` (values outside are clipped).
        cmap: matplotlib colour map name.

    Returns:
        uint8[H, W, 3] RGB.
    """
    from matplotlib import colormaps

    lut = (np.asarray(colormaps[cmap](np.linspace(0, 1, 256)))[:, :3] * 255).round().astype(np.uint8)
    return lut[np.rint(np.clip(entropy, 0, 1) * 255).astype(np.uint8)]


def _colour_bar(height: int, cmap: str) -> np.ndarray:
    """uint8[height, ~height/3, 3]: a vertical colour bar 0..1 labelled ``entropy / log K``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    dpi, width = 100, max(24, height // 3)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    cax = fig.add_axes([0.12, 0.05, 0.25, 0.9])
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), cax=cax, ticks=[0, 0.5, 1])
    size = max(4.0, height / 30)
    bar.ax.tick_params(labelsize=size)
    bar.set_label("entropy / log K", fontsize=size)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def entropy_png(entropy: np.ndarray, path: str | Path, cmap: str = ENTROPY_CMAP) -> Path:
    """Write a normalised entropy map as an RGB PNG of the same size with a colour bar.

    The bar (``0 .. 1``, labelled ``entropy / log K``) covers the right quarter of the width at most and the middle
    60 % of the height (none on images under 48 pixels high); every other pixel is :func:`entropy_rgb` of its
    entropy.

    Args:
        entropy: float[H, W] in ``[0, 1]`` (:func:`metrics.calibration.normalized_entropy` of one image).
        path: the PNG written.
        cmap: matplotlib colour map name.

    Returns:
        ``path``.
    """
    from PIL import Image

    rgb = entropy_rgb(entropy, cmap)
    h, w = rgb.shape[:2]
    if h >= 48:
        bar = _colour_bar(int(0.6 * h), cmap)
        bar = bar[:, : max(1, min(bar.shape[1], w // 4))]
        top, left = (h - bar.shape[0]) // 2, w - bar.shape[1]
        rgb[top : top + bar.shape[0], left:] = bar
    Image.fromarray(rgb).save(path, compress_level=1)
    return Path(path)
