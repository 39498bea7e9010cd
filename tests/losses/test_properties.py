"""Properties every registered loss must have: gradients, ignore invariance, untouched labels, autocast,
logits smaller than the label, class weights as buffers."""

import pytest
import torch
import torch.nn.functional as F

from losses import LOSSES, build_loss

K = 3
WEIGHTS = torch.tensor([0.5, 2.0, 1.5])
ALL = sorted(LOSSES)
# RMI needs >= radius (3) points per side after its 3/3 max-pool: 12x12 -> 4x4 -> 2x2 windows.
SIZE = {"RMI": 12, "wRMI": 12}


def _case(name: str, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    s = SIZE.get(name, 6)
    x = torch.randn(2, K, s, s, generator=g, dtype=torch.float64).to(dtype)
    y = torch.randint(0, K, (2, s, s), generator=g)
    y[0, :2, :3] = 255
    y[1, -1, :] = 255
    return x, y


def _loss(name: str, **kw):
    return build_loss(name, num_classes=K, class_weights=WEIGHTS, **kw)


@pytest.mark.parametrize("name", ALL)
def test_gradcheck_float64(name):
    if name == "Lovasz":
        pytest.skip(
            "smp's Lovasz-softmax computes in float32 only (float64 gradcheck impossible); "
            "its gradient is checked against finite differences in float32 below"
        )
    x, y = _case(name, torch.float64)
    loss = _loss(name)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (x,), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_lovasz_gradient_matches_finite_differences_float32():
    x, y = _case("Lovasz")
    loss = _loss("Lovasz")
    x.requires_grad_(True)
    loss(x, y).backward()
    u = torch.randn_like(x)
    h = 1e-2
    with torch.no_grad():
        fd = (loss(x + h * u, y) - loss(x - h * u, y)) / (2 * h)
    assert torch.dot(x.grad.flatten(), u.flatten()).item() == pytest.approx(fd.item(), rel=2e-2, abs=1e-3)


def test_gradcheck_rmi_full_jacobian_tiny():
    # every input checked (slow mode) on a 1x2x5x5 input: radius 2, 2/2 avg pooling -> 3x3 -> 4 windows of d = 4
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (1, 5, 5), generator=g)
    y[0, 0, :2] = 255
    loss = build_loss(
        "wRMI", num_classes=2, class_weights=[0.7, 1.9], radius=2, pool_way="avg", pool_size=2, pool_stride=2
    )
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (x,), eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("name", ALL)
def test_ignored_pixels_change_nothing_and_get_no_gradient(name):
    x, y = _case(name)
    loss = _loss(name)
    ignored = (y == 255).unsqueeze(1).expand_as(x)
    x2 = torch.where(ignored, torch.randn_like(x) * 10, x)
    x.requires_grad_(True)
    value = loss(x, y)
    value.backward()
    assert torch.equal(value.detach(), loss(x2, y))
    assert x.grad[ignored].abs().max() == 0
    assert x.grad[~ignored].abs().max() > 0


@pytest.mark.parametrize("name", ALL)
def test_label_tensor_unchanged(name):
    x, y = _case(name)
    before = y.clone()
    _loss(name)(x, y)
    assert torch.equal(y, before)


def test_rmi_treats_every_label_at_or_above_k_as_ignored():
    x, y = _case("RMI")
    y_other = torch.where(y == 255, torch.full_like(y, K), y)  # label K (e.g. CamVid's 11) instead of 255
    for name in ("RMI", "wRMI"):
        assert torch.equal(_loss(name)(x, y), _loss(name)(x, y_other))


@pytest.mark.parametrize("name", ALL)
def test_bf16_autocast_computes_in_float32(name):
    x, y = _case(name)
    conv = torch.nn.Conv2d(K, K, 1)
    loss = _loss(name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = conv(x)
        assert logits.dtype == torch.bfloat16
        value = loss(logits, y)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(conv.weight.grad).all()
    # identical to the float32 computation on the same (bf16-rounded) logits
    assert torch.allclose(value.detach(), loss(logits.detach().float(), y), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_logits_smaller_than_label_are_resized_first(name):
    x, y = _case(name)
    small = F.avg_pool2d(x, 2)
    up = F.interpolate(small, size=y.shape[-2:], mode="bilinear", align_corners=False)
    loss = _loss(name)
    assert torch.equal(loss(small, y), loss(up, y))


@pytest.mark.parametrize("name", ["wCE", "wRMI"])
def test_class_weights_are_buffers_moved_with_the_module(name):
    loss = _loss(name)
    assert torch.equal(loss.weight, WEIGHTS)
    assert "weight" in dict(loss.named_buffers()) and "weight" not in loss.state_dict()
    x, y = _case(name)
    ref = loss(x, y)
    loss.to(torch.float64)  # buffers follow .to(); the loss still computes in float32 for float32 logits
    assert loss.weight.dtype == torch.float64
    assert torch.allclose(loss(x, y), ref)
    # the weights matter: a different weight vector gives a different value
    assert not torch.allclose(build_loss(name, num_classes=K, class_weights=[1.0, 1.0, 1.0])(x, y), ref)
