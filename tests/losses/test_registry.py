"""The loss registry and the per-output ``lossfunction`` / ``lossweight`` / ``loss_params`` contract."""

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from losses import ALIASES, LOSSES, MultiOutputLoss, build_loss, loss_params_for
from tests.conftest import compose_cfg

K = 4
W = [0.5, 1.0, 2.0, 1.5]
DOCUMENTED_NAMES = {"CE", "wCE", "RMI", "wRMI", "DC", "DC+CE", "TOPK", "DC+TOPK", "Lovasz", "Focal", "Jaccard"}


class TwoHeads(nn.Module):
    """A tiny multi-output model: ``out`` at full resolution, ``aux`` at half (as HRNet-OCR)."""

    output_names = ("out", "aux")

    def __init__(self):
        super().__init__()
        self.out = nn.Conv2d(3, K, 3, padding=1)
        self.aux = nn.Conv2d(3, K, 3, padding=1, stride=2)

    def forward(self, x):
        return {"out": self.out(x), "aux": self.aux(x)}


def test_every_documented_name_is_registered():
    assert set(LOSSES) >= DOCUMENTED_NAMES
    assert ALIASES == {"DC_CE": "DC+CE", "DC_TOPK": "DC+TOPK"}


def test_list_of_losses_on_a_multi_output_model():
    torch.manual_seed(0)
    model = TwoHeads()
    x = torch.randn(2, 3, 24, 24)
    y = torch.randint(0, K, (2, 24, 24))
    y[:, :3] = 255
    crit = MultiOutputLoss(
        model.output_names,
        ["wRMI", "DC+CE"],
        [1.0, 0.4],
        num_classes=K,
        class_weights=W,
        params={"wRMI": {"pool_way": "avg", "pool_size": 4, "pool_stride": 4}, "DC_CE": {"do_bg": True}},
    )
    outputs = model(x)
    assert outputs["aux"].shape[-1] == 12  # smaller than the label: resized inside
    total, parts = crit(outputs, y)
    rmi = build_loss("wRMI", num_classes=K, class_weights=W, pool_way="avg", pool_size=4, pool_stride=4)
    dcce = build_loss("DC+CE", num_classes=K, do_bg=True)
    aux = F.interpolate(outputs["aux"], size=(24, 24), mode="bilinear", align_corners=False)
    expected_out, expected_aux = rmi(outputs["out"], y), dcce(aux, y)
    assert torch.allclose(parts["out"], expected_out) and torch.allclose(parts["aux"], expected_aux)
    assert torch.allclose(total, expected_out + 0.4 * expected_aux)
    assert crit.losses[0].pool_way == "avg" and crit.losses[1].do_bg is True
    heads = [model.out.weight, model.aux.weight]
    expected = torch.autograd.grad(expected_out + 0.4 * expected_aux, heads, retain_graph=True)
    total.backward()
    for weight, grad in zip(heads, expected):
        assert grad.any() and torch.allclose(weight.grad, grad)


def test_ms_ocr_style_four_outputs():
    # lossfunction=[wRMI,wCE,wCE,wCE] lossweight=[1.0,0.4,0.05,0.05]: one loss per output, weighted sum
    names = ("out", "aux", "scale_0.5", "scale_1.0")
    torch.manual_seed(1)
    outputs = {n: torch.randn(1, K, 12 if n == "scale_0.5" else 24, 24 if n != "scale_0.5" else 12) for n in names}
    y = torch.randint(0, K, (1, 24, 24))
    crit = MultiOutputLoss(names, ["wRMI", "wCE", "wCE", "wCE"], [1.0, 0.4, 0.05, 0.05], num_classes=K, class_weights=W)
    total, parts = crit(outputs, y)
    assert list(parts) == list(names)
    assert torch.allclose(
        total, parts["out"] + 0.4 * parts["aux"] + 0.05 * parts["scale_0.5"] + 0.05 * parts["scale_1.0"]
    )


def test_length_mismatch_names_both_lengths_and_outputs():
    with pytest.raises(ValueError, match=r"lossfunction has 1 entries \['CE'\] but the model has 2 outputs"):
        MultiOutputLoss(["out", "aux"], ["CE"], [1.0, 0.4], num_classes=K)
    with pytest.raises(ValueError, match=r"lossweight has 1 entries \[1.0\] but the model has 2 outputs"):
        MultiOutputLoss(["out", "aux"], ["CE", "CE"], [1.0], num_classes=K)


def test_nnunet_losses_take_exactly_their_own_options():
    dice_options = ["batch_dice", "do_bg", "smooth", "weight_ce", "weight_dice"]
    assert build_loss("DC_TOPK", num_classes=K, k=5).k == 5.0
    for name, bad, options in (
        ("DC+CE", "k", dice_options),
        ("TOPK", "smooth", ["k"]),
        ("DC+TOPK", "kk", [*dice_options, "k"]),
    ):
        with pytest.raises(TypeError, match=rf"loss '{re.escape(name)}' has no option\(s\) \['{bad}'\]") as err:
            build_loss(name, num_classes=K, **{bad: 1})
        assert str(err.value).endswith(str(options))


def test_clear_errors():
    with pytest.raises(KeyError, match=r"unknown lossfunction 'Dice'; registered: \[.*'DC\+CE'"):
        build_loss("Dice", num_classes=K)
    with pytest.raises(TypeError, match=r"loss 'RMI' has no option\(s\) \['pool'\]; its options .*'pool_way'"):
        build_loss("RMI", num_classes=K, pool="avg")
    with pytest.raises(KeyError, match="unknown lossfunction 'RMi'"):
        MultiOutputLoss(["out"], ["RMI"], [1.0], num_classes=K, params={"RMi": {"pool_way": "avg"}})
    with pytest.raises(ValueError, match="class_weights has 3 entries, dataset has 4 classes"):
        build_loss("wCE", num_classes=K, class_weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="logits have 3 channels, the loss was built for num_classes=4"):
        build_loss("CE", num_classes=K)(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="target contains label 7, outside 0..3 and not ignore_index=255"):
        build_loss("DC+CE", num_classes=K)(torch.zeros(1, K, 2, 2), torch.tensor([[[0, 7], [1, 255]]]))
    with pytest.raises(KeyError, match=r"the model returned outputs \['out'\], the loss expects 'aux'"):
        MultiOutputLoss(["out", "aux"], ["CE", "CE"], [1, 1], num_classes=K)(
            {"out": torch.zeros(1, K, 2, 2)}, torch.zeros(1, 2, 2, dtype=torch.long)
        )


def test_loss_params_alias_lookup():
    assert loss_params_for("DC+CE", {"DC_CE": {"smooth": 0.0}, "RMI": {"pool_way": "avg"}}) == {"smooth": 0.0}
    assert loss_params_for("DC_CE", {"DC+CE": {"smooth": 1.0}, "DC_CE": {"smooth": 0.0}}) == {"smooth": 0.0}
    assert loss_params_for("wRMI", {"RMI": {"pool_way": "avg"}}) == {}  # wRMI has its own entry


def test_command_line_names_compose():
    cfg = compose_cfg(
        [
            "lossfunction=[DC+TOPK]",
            "+loss_params.DC_TOPK.k=5",
            "+loss_params.RMI={pool_way:avg,pool_size:4,pool_stride:4}",
        ]
    )
    assert list(cfg.lossfunction) == ["DC+TOPK"]
    crit = MultiOutputLoss(
        ["out"],
        cfg.lossfunction,
        cfg.lossweight,
        num_classes=cfg.dataset.num_classes,
        class_weights=cfg.dataset.class_weights,
        params=dict(cfg.loss_params),
    )
    assert crit.losses[0].k == 5
