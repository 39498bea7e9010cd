"""BatchNorm folding: which pairs fold, the folded logits equal the original's, and a misread model is refused."""

from __future__ import annotations

import copy

import pytest
import segmentation_models_pytorch as smp
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from models.batchnorm_folding import fold_batchnorm


def _randomise_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics and affine parameters (a fresh BatchNorm is the identity map)."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(c, generator=g))
            m.bias.data.copy_(torch.rand(c, generator=g) - 0.5)
    return model.eval()


def _count(model: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize("encoder,n", [("resnet18", 30), ("tu-tf_efficientnet_lite0", 58)])
def test_every_batchnorm_after_a_conv_folds_in_place_and_the_logits_stay(encoder, n):
    torch.manual_seed(0)
    model = _randomise_statistics(smp.Unet(encoder, encoder_weights=None, classes=5))
    original = copy.deepcopy(model)
    x = torch.randn(1, 3, 64, 64)
    assert fold_batchnorm(model, x) == n == _count(original, nn.BatchNorm2d)  # smp: conv -> BN; timm: BatchNormAct2d
    assert _count(model, nn.BatchNorm2d) == 0
    with torch.no_grad():
        ref, out = original(x), model(x)
    assert torch.allclose(out, ref, rtol=0, atol=1e-4 * max(1.0, ref.abs().max().item()))
    # each BatchNorm's 4 x C numbers become C conv biases (or fold into the existing ones)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in original.parameters())


class _SharedConvOutput(nn.Module):
    """conv -> bn, and the conv output also read by a second module: folding would change that reader."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.other = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + self.other(y)


class _FunctionalReader(_SharedConvOutput):
    """The second reader is a function the hooks cannot see."""

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + torch.relu(y)


def test_a_conv_output_read_by_another_module_is_not_folded():
    model = _randomise_statistics(_SharedConvOutput())
    assert fold_batchnorm(model, torch.randn(1, 3, 8, 8)) == 0 and isinstance(model.bn, nn.BatchNorm2d)


def test_a_fold_that_changes_the_logits_is_refused_in_one_line_and_undone():
    model = _randomise_statistics(_FunctionalReader())
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        before = model(x)
    conv_weight = model.conv.weight
    with pytest.raises(
        ValueError, match=r"^BatchNorm folding changed the logits by .* on _FunctionalReader; run with fold_bn=false$"
    ):
        fold_batchnorm(model, x)
    assert isinstance(model.bn, nn.BatchNorm2d) and model.conv.weight is conv_weight  # restored
    with torch.no_grad():
        assert torch.equal(model(x), before)


class _BatchNormXd(_BatchNorm):
    """A BatchNorm subclass that only relaxes the input check, as mmengine's (MMSeg's reverted SyncBN)."""

    def _check_input_dim(self, input):
        return


class _ConvBNXd(nn.Module):
    def __init__(self, bn: nn.Module):
        super().__init__()
        self.conv, self.bn, self.head = nn.Conv2d(3, 4, 3, padding=1), bn, nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))))


def test_batchnorm_subclasses_with_the_plain_forward_fold_the_others_stay():
    x = torch.randn(2, 3, 8, 8)
    model = _randomise_statistics(_ConvBNXd(_BatchNormXd(4)))
    with torch.no_grad():
        ref = model(x)
    assert fold_batchnorm(model, x) == 1 and isinstance(model.bn, nn.Identity)
    with torch.no_grad():
        assert torch.allclose(model(x), ref, rtol=0, atol=1e-5)
    no_stats = _ConvBNXd(nn.BatchNorm2d(4, track_running_stats=False)).eval()  # batch statistics: not foldable
    assert fold_batchnorm(no_stats, x) == 0 and isinstance(no_stats.bn, nn.BatchNorm2d)
