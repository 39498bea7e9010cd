"""Colourised (image | label | prediction) grids logged to TensorBoard."""

import torch

from inference.visualize import comparison_grid


def test_comparison_grid_colours_and_layout():
    palette = [[10, 20, 30], [40, 50, 60]]
    images = torch.zeros(2, 3, 2, 3)  # normalised 0 with mean 0.5 -> grey 128
    target = torch.tensor([[[0, 1, 255], [0, 0, 0]]] * 2)
    pred = torch.ones(2, 2, 3, dtype=torch.long)
    grid = comparison_grid(images, target, pred, palette, mean=[0.5] * 3, std=[0.2] * 3)
    assert grid.shape == (3, 4, 9) and grid.dtype == torch.uint8
    assert grid[:, 0, 0].tolist() == [128, 128, 128]  # image panel
    assert grid[:, 0, 3].tolist() == [10, 20, 30] and grid[:, 0, 4].tolist() == [40, 50, 60]  # label panel
    assert grid[:, 0, 5].tolist() == [0, 0, 0]  # ignore_index -> black
    assert grid[:, 3, 6].tolist() == [40, 50, 60]  # prediction panel, second image
