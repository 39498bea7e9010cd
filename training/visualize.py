"""Colourised predictions for TensorBoard and validation folders."""
from __future__ import annotations

import torch


def colorize(labels: torch.Tensor, palette, ignore_index: int = 255) -> torch.Tensor:
    """Map int64[N,H,W] (or [H,W]) trainIds to uint8[..., 3, H, W] colours; ignore pixels are black."""
    pal = torch.zeros((256, 3), dtype=torch.uint8)
    pal[: len(palette)] = torch.as_tensor(palette, dtype=torch.uint8)
    lab = labels.detach().cpu().long().clamp(0, 255)
    lab = torch.where(labels.detach().cpu() == ignore_index, torch.full_like(lab, 255), lab)
    pal[255] = 0 if ignore_index == 255 else pal[255]
    return pal[lab].movedim(-1, -3)


def denormalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """float[N,3,H,W] normalised images (0..1-scale mean/std) -> uint8[N,3,H,W]."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return ((images.float() * s + m).clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def comparison_grid(images, target, pred, palette, mean, std, ignore_index: int = 255) -> torch.Tensor:
    """Rows of (image | ground truth | prediction) as one uint8[3, N*H, 3*W] tensor."""
    img = denormalize(images, mean, std)
    rows = [torch.cat([i, colorize(t, palette, ignore_index), colorize(p, palette, ignore_index)], dim=-1)
            for i, t, p in zip(img, target, pred)]
    return torch.cat(rows, dim=-2)
