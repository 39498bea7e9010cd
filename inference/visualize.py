"""Colourised label maps, overlays with a class legend, and (image | label | prediction) panels (numpy + PIL).

The overlay follows the usual review format of segmentation predictions (as in the Cityscapes/MMSeg
demos): the photo blended with the class colours (``alpha`` = weight of the colours), and a legend of
the classes *present in the prediction* with their colour swatch, name and pixel share.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def palette_lut(palette: Sequence[Sequence[int]], ignore_index: int = 255) -> np.ndarray:
    """uint8[256, 3] colour table: class k -> ``palette[k]``, ``ignore_index`` and unknown ids -> black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    if 0 <= ignore_index < 256 and ignore_index >= len(palette):
        lut[ignore_index] = 0
    return lut


def colorize(labels: np.ndarray, palette, ignore_index: int = 255) -> np.ndarray:
    """int[H, W] trainIds -> uint8[H, W, 3] colours (ignore pixels black)."""
    return palette_lut(palette, ignore_index)[np.clip(np.asarray(labels), 0, 255).astype(np.uint8)]


def denormalize(image: torch.Tensor, mean, std) -> np.ndarray:
    """float[3, H, W] normalised image (0..1-scale mean/std) -> uint8[H, W, 3]."""
    m = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)
    img = ((image.detach().float().cpu() * s + m).clamp(0, 1) * 255).round().to(torch.uint8)
    return img.permute(1, 2, 0).numpy()


def comparison(
    image: np.ndarray, target: np.ndarray, pred: np.ndarray, palette, ignore_index: int = 255
) -> Image.Image:
    """One row (image | ground truth | prediction) as a PIL image; inputs uint8[H,W,3], int[H,W], int[H,W]."""
    return Image.fromarray(
        np.concatenate([image, colorize(target, palette, ignore_index), colorize(pred, palette, ignore_index)], axis=1)
    )


def class_fractions(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float64[K]: share of the pixels of ``labels`` (int[H, W]) predicted as each class (sums to 1)."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=num_classes)[:num_classes]
    return counts / max(int(counts.sum()), 1)


def overlay_with_legend(
    image: np.ndarray,
    labels: np.ndarray,
    palette,
    class_names: Sequence[str],
    alpha: float = 0.5,
    min_fraction: float = 0.0,
) -> Image.Image:
    """The photo blended with the class colours, plus a legend panel on the right.

    Args:
        image: uint8[H, W, 3] RGB photo.
        labels: int[H, W] predicted trainIds (< K).
        palette: K RGB colours; class_names: K names.
        alpha: weight of the class colours in the blend (0..1).
        min_fraction: classes covering less than this share of the pixels are left out of the legend.

    Returns:
        RGB image of width W + legend width and height H; the legend lists the classes found, largest
        share first, as colour swatch, name and share in percent.
    """
    blend = Image.blend(Image.fromarray(image), Image.fromarray(colorize(labels, palette)), alpha)  # uint8, in C
    h, w = labels.shape
    frac = class_fractions(labels, len(class_names))
    found = [int(k) for k in np.argsort(-frac, kind="stable") if frac[k] > max(min_fraction, 0.0)]
    font_px = int(np.clip(min(h, w) / 28, 11, 96))
    font = ImageFont.load_default(size=font_px)
    row, pad = int(font_px * 1.5), font_px // 2
    text = [f"{class_names[k]} {100 * frac[k]:.1f}%" for k in found]
    text_w = max((int(font.getlength(t)) for t in text), default=0)
    per_col = max(1, (h - 2 * pad) // row)
    cols = max(1, -(-len(found) // per_col))
    col_w = pad + row + pad + text_w + pad
    canvas = Image.new("RGB", (w + cols * col_w, h), (255, 255, 255))
    canvas.paste(blend, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, (k, t) in enumerate(zip(found, text)):
        x0 = w + (i // per_col) * col_w + pad
        y0 = pad + (i % per_col) * row
        draw.rectangle(
            [x0, y0, x0 + row - pad, y0 + row - pad], fill=tuple(int(c) for c in palette[k]), outline=(0, 0, 0)
        )
        draw.text((x0 + row, y0 + (row - pad) / 2), t, fill=(0, 0, 0), font=font, anchor="lm")
    return canvas


def comparison_grid(
    images: torch.Tensor, target: torch.Tensor, pred: torch.Tensor, palette, mean, std, ignore_index: int = 255
) -> torch.Tensor:
    """Rows of (image | ground truth | prediction) stacked into one uint8[3, N*H, 3*W] tensor (TensorBoard).

    Args:
        images: float[N, 3, H, W] normalised images; target, pred: int64[N, H, W] trainIds.
    """
    rows = [
        np.asarray(comparison(denormalize(i, mean, std), t.cpu().numpy(), p.cpu().numpy(), palette, ignore_index))
        for i, t, p in zip(images, target, pred)
    ]
    return torch.from_numpy(np.concatenate(rows, axis=0)).permute(2, 0, 1).contiguous()
