"""Hand-checked cases for the inference engine (whole/slide, window grid, scales, flip, MS-OCR agreement)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from inference import InferenceSettings, infer, predict_labels, predict_labels_streaming
from inference.windows import slide_logits, window_starts


class Identity(nn.Module):
    """Logits = the input itself (K = C = 3): the identity on one-hot inputs."""

    output_names = ("out",)

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))  # gives the model a device
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        return {"out": x * self.w}


class Corner(nn.Module):
    """Records the (y, x) coordinates encoded in channels 0/1 of each window's top-left pixel."""

    output_names = ("out",)

    def __init__(self):
        super().__init__()
        self.corners: list[tuple[int, int]] = []
        self.batches: list[int] = []

    def forward(self, x):
        self.batches.append(x.shape[0])
        self.corners += [(int(a), int(b)) for a, b in zip(x[:, 0, 0, 0].tolist(), x[:, 1, 0, 0].tolist())]
        return {"out": x[:, :2]}


class WidthLogit(nn.Module):
    """Channel 0 = W_in / 8 everywhere, channel 1 = 0: a constant that depends on the view's scale."""

    output_names = ("out",)

    def forward(self, x):
        n, _, h, w = x.shape
        out = torch.zeros(n, 2, h, w)
        out[:, 0] = w / 8
        return {"out": out}


class ColumnLogit(nn.Module):
    """Channel 0 = column index (ignores the input), channel 1 = 0: not flip-equivariant."""

    output_names = ("out",)

    def forward(self, x):
        n, _, h, w = x.shape
        out = torch.zeros(n, 2, h, w)
        out[:, 0] = torch.arange(w, dtype=torch.float32)
        return {"out": out}


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def one_hot_image(h=10, w=13, k=3, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (2, h, w), generator=g)
    return 5.0 * torch.nn.functional.one_hot(labels, k).permute(0, 3, 1, 2).float(), labels


def test_window_starts_last_window_aligned_to_border():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]  # last window shifted back to end at 11
    assert window_starts(13, 5, 4) == [0, 4, 8]
    assert window_starts(3, 4, 3) == [0]  # image smaller than the window: one window


def test_whole_identity_on_one_hot_gives_softmax_closed_form():
    x, labels = one_hot_image()
    probs = infer(Identity(), x)
    p_hit = math.exp(5) / (math.exp(5) + 2)  # softmax of (5, 0, 0)
    assert probs.shape == (2, 3, 10, 13) and probs.dtype == torch.float32
    assert torch.allclose(probs.gather(1, labels[:, None]), torch.full((2, 1, 10, 13), p_hit), atol=1e-6)
    assert torch.equal(predict_labels(Identity(), x), labels)
    assert torch.equal(x, one_hot_image()[0])  # the caller's images are not modified


@pytest.mark.parametrize(
    "crop,stride,batch", [((4, 5), (3, 4), 4), ((4, 4), (1, 1), 7), ((20, 20), (8, 8), 1), ((3, 13), (2, 13), 2)]
)
def test_slide_identity_equals_whole(crop, stride, batch):
    x, labels = one_hot_image()
    s = InferenceSettings(mode="slide", crop_size=crop, stride=stride, window_batch=batch)
    # averaged window logits of the identity are the input itself (overlap counts divided out exactly)
    assert torch.allclose(slide_logits(Identity(), x, s), x, atol=1e-6)
    assert torch.allclose(infer(Identity(), x, s), infer(Identity(), x), atol=1e-6)
    assert torch.equal(predict_labels(Identity(), x, s), labels)


def test_slide_window_grid_and_batching():
    h, w = 10, 13
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    x = torch.stack([yy, xx, torch.zeros_like(yy)])[None].repeat(2, 1, 1, 1)  # N=2 images
    model = Corner()
    slide_logits(model, x, InferenceSettings(mode="slide", crop_size=(4, 5), stride=(3, 4), window_batch=4))
    expected = [(y, c) for y in (0, 3, 6) for c in (0, 4, 8)]  # 9 windows, last at the border
    assert sorted(set(model.corners)) == expected
    assert model.corners[::2] == expected[:4] + expected[4:8] + expected[8:]  # image 0 of each window pair
    assert model.batches == [8, 8, 2]  # 4 windows x 2 images per forward


def test_scales_average_probabilities_not_logits():
    x = torch.zeros(1, 3, 8, 8)
    probs = infer(WidthLogit(), x, InferenceSettings(scales=[0.5, 1.0, 2.0]))
    # views see W = 4, 8, 16 -> channel-0 logits 0.5, 1, 2; the engine averages sigmoid(.) of each
    expected = (sigmoid(0.5) + sigmoid(1.0) + sigmoid(2.0)) / 3
    assert probs.shape == (1, 2, 8, 8)
    assert torch.allclose(probs[:, 0], torch.full((1, 8, 8), expected), atol=1e-6)
    assert abs(expected - sigmoid((0.5 + 1 + 2) / 3)) > 1e-3  # logit averaging would differ


def test_flip_is_undone_before_averaging():
    w = 6
    probs = infer(ColumnLogit(), torch.zeros(1, 3, 2, w), InferenceSettings(flip=True))
    expected = torch.tensor([(sigmoid(j) + sigmoid(w - 1 - j)) / 2 for j in range(w)])
    assert torch.allclose(probs[0, 0, 0], expected, atol=1e-6)
    # an input-equivariant model is unchanged by flip, in slide mode too
    x, _labels = one_hot_image()
    s = InferenceSettings(mode="slide", crop_size=(4, 5), stride=(3, 4), flip=True, scales=[1.0])
    assert torch.allclose(infer(Identity(), x, s), infer(Identity(), x), atol=1e-6)


def test_multiscale_flip_slide_identity_resized_to_out_size():
    x, _labels = one_hot_image(16, 16)
    s = InferenceSettings(mode="slide", crop_size=8, stride=6, scales=[0.5, 1.0, 2.0], flip=True)
    probs = infer(Identity(), x, s, out_size=(12, 12))
    assert probs.shape == (2, 3, 12, 12)
    assert torch.allclose(probs.sum(1), torch.ones(2, 12, 12), atol=1e-5)
    # each view = softmax(bilinear(x -> 12x12)) since bilinear resize commutes with the identity model
    ref = torch.nn.functional.interpolate(x, size=(12, 12), mode="bilinear", align_corners=False).softmax(1)
    views = []
    for scale in (0.5, 1.0, 2.0):
        xs = torch.nn.functional.interpolate(x, size=(int(16 * scale),) * 2, mode="bilinear", align_corners=False)
        views.append(
            torch.nn.functional.interpolate(xs, size=(12, 12), mode="bilinear", align_corners=False).softmax(1)
        )
    assert torch.allclose(probs, torch.stack(views).mean(0), atol=1e-5)
    assert not torch.allclose(probs, ref, atol=1e-3)  # the scales did change the result


def test_model_with_eval_scales_runs_once_per_flip_at_scale_one():
    model = Identity()
    model.eval_scales = [0.5, 1.0, 2.0]
    x, _ = one_hot_image()
    infer(model, x, InferenceSettings(scales=[0.5, 1.0, 2.0], flip=True))
    assert model.calls == [(2, 3, 10, 13), (2, 3, 10, 13)]  # scale 1.0, plain + flipped


def test_accumulate_on_cpu():
    x, _ = one_hot_image()
    s = InferenceSettings(mode="slide", crop_size=4, stride=3, accumulate_on="cpu", flip=True)
    probs = infer(Identity(), x, s)
    assert probs.device.type == "cpu" and torch.allclose(probs, infer(Identity(), x), atol=1e-6)


def test_settings_errors_and_from_config():
    with pytest.raises(ValueError, match=r"one of \['whole', 'slide'\], got 'sliding'"):
        InferenceSettings(mode="sliding")
    with pytest.raises(ValueError, match="slide inference needs crop_size and stride"):
        InferenceSettings(mode="slide", crop_size=[64, 64])
    with pytest.raises(ValueError, match="scales"):
        InferenceSettings(scales=[0.0])
    with pytest.raises(ValueError, match=r"stride \[5, 2\] must not exceed crop_size \[4, 4\]"):
        InferenceSettings(mode="slide", crop_size=4, stride=[5, 2])
    with pytest.raises(ValueError, match="crop_size must be positive"):
        InferenceSettings(mode="slide", crop_size=[0, 4], stride=2)
    s = InferenceSettings.from_config(
        {"mode": "slide", "crop_size": [4, 6], "stride": 3, "scales": None, "unknown": 1}, flip=True
    )
    assert (s.mode, s.crop_size, s.stride, s.scales, s.flip) == ("slide", (4, 6), (3, 3), [1.0], True)
    assert s.to_dict()["crop_size"] == [4, 6]


class Mixer(nn.Module):
    """A fixed random 3x3 conv (K = 4): overlapping windows see different borders, so slide != whole."""

    output_names = ("out",)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        with torch.no_grad():
            g = torch.Generator().manual_seed(1)
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.copy_(torch.randn(4, generator=g))

    def forward(self, x):
        return {"out": self.conv(x)}


@pytest.mark.parametrize(
    "h,w,crop,stride,flip",
    [
        (10, 13, (4, 5), (3, 4), False),
        (11, 13, (4, 5), (3, 4), True),
        (23, 17, (8, 6), (5, 5), True),
        (3, 9, (4, 4), (2, 3), False),
    ],
)
def test_streaming_labels_equal_full_accumulator(h, w, crop, stride, flip):
    g = torch.Generator().manual_seed(h * w)
    x = torch.randn(2, 3, h, w, generator=g)
    s = InferenceSettings(mode="slide", crop_size=crop, stride=stride, flip=flip, window_batch=3)
    model = Mixer()
    full = infer(model, x, s)
    labels = predict_labels_streaming(model, x, s)
    assert labels.dtype == torch.int64 and labels.shape == (2, h, w)
    top2 = full.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-5  # pixels that are not float ties
    assert clear.float().mean() > 0.99
    assert torch.equal(labels[clear], full.argmax(1)[clear])
    one_hot, truth = one_hot_image(h, w)
    assert torch.equal(predict_labels_streaming(Identity(), one_hot, s), truth)
    with pytest.raises(ValueError, match="streaming labels need mode='slide' and scales=\\[1.0\\]"):
        predict_labels_streaming(model, x, InferenceSettings(mode="slide", crop_size=4, stride=3, scales=[0.5, 1.0]))
