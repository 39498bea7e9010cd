"""The engine's probability callback and temperature, the reliability diagram, the entropy map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inference import InferenceSettings, infer, predict_labels, predict_labels_streaming
from inference.engine import view_logits
from inference.temperature import set_temperature, temperature_of, without_temperature
from inference.uncertainty import entropy_png, reliability_diagram
from metrics.calibration import SegmentationCalibration
from tests.inference.test_engine import Mixer

SETTINGS = [
    InferenceSettings(),
    InferenceSettings(scales=[0.75, 1.0], flip=True),
    InferenceSettings(resize=[26, 20]),  # labels band by band, one view
    InferenceSettings(resize=[26, 20], scales=[0.75, 1.0], flip=True),  # band by band, three views
]


def rows_of(fn, shape) -> torch.Tensor:
    """The probabilities ``fn(on_probs)`` hands to the callback, put together; every row exactly once."""
    out, seen = torch.full(shape, float("nan")), torch.zeros(shape[2], dtype=torch.int64)

    def on_probs(p, r0, r1):
        out[:, :, r0:r1] = p
        seen[r0:r1] += 1

    fn(on_probs)
    assert torch.equal(seen, torch.ones_like(seen))
    return out


@pytest.mark.parametrize("settings", SETTINGS)
def test_on_probs_gives_the_probabilities_of_infer(settings):
    model, x = Mixer().eval(), torch.randn(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    full = infer(model, x, settings)
    got = rows_of(lambda cb: predict_labels(model, x, settings, band_bytes=4 * 2 * 4 * 23 * 5, on_probs=cb), full.shape)
    assert torch.allclose(got, full, atol=1e-5)


@pytest.mark.parametrize("flip", [False, True])
def test_streaming_on_probs_gives_the_probabilities_of_infer(flip):
    model, x = Mixer().eval(), torch.randn(1, 3, 23, 17, generator=torch.Generator().manual_seed(1))
    s = InferenceSettings(mode="slide", crop_size=(8, 6), stride=(5, 5), flip=flip)
    full = infer(model, x, s)
    got = rows_of(lambda cb: predict_labels_streaming(model, x, s, on_probs=cb), full.shape)
    assert torch.allclose(got, full, atol=1e-5)


@pytest.mark.parametrize("settings", [InferenceSettings(), InferenceSettings(mode="slide", crop_size=6, stride=4)])
def test_temperature_divides_the_logits_and_keeps_the_labels(settings):
    model, x = Mixer().eval(), torch.randn(2, 3, 11, 13, generator=torch.Generator().manual_seed(2))
    plain = infer(model, x, settings)
    (_, raw), *_ = list(view_logits(model, x, settings))
    set_temperature(model, 2.5)
    assert temperature_of(model) == 2.5
    scaled = infer(model, x, settings)
    (_, div), *_ = list(view_logits(model, x, settings))
    assert torch.allclose(div, raw / 2.5, atol=1e-6)
    assert torch.allclose(scaled, torch.softmax(raw / 2.5, dim=1), atol=1e-6)
    assert torch.equal(predict_labels(model, x, settings), plain.argmax(1))  # same labels, softer probabilities
    assert scaled.amax(1).mean() < plain.amax(1).mean()
    with without_temperature(model):
        assert temperature_of(model) is None and torch.allclose(infer(model, x, settings), plain)
    assert temperature_of(model) == 2.5
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got -1"):
        set_temperature(model, -1)


def test_reliability_diagram_png(tmp_path):
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(2, 4, 20, 20, generator=g), dim=1)
    m = SegmentationCalibration()
    m.update(probs, torch.randint(0, 4, (2, 20, 20), generator=g))
    path = reliability_diagram({"model (T = 1)": m.compute()}, tmp_path / "reliability.png")
    image = Image.open(path)
    assert image.size[0] > 300 and image.size[1] > 300


def test_entropy_png_has_the_image_size_and_the_colour_scale(tmp_path):
    entropy = np.zeros((40, 64), dtype=np.float32)
    entropy[:, 32:] = 1.0  # left half certain, right half uniform
    path = entropy_png(entropy, tmp_path / "x_uncertainty.png")
    rgb = np.asarray(Image.open(path).convert("RGB"))
    assert rgb.shape == (40, 64, 3)
    from matplotlib import colormaps

    lut = (np.asarray(colormaps["magma"]([0.0, 1.0]))[:, :3] * 255).round().astype(np.uint8)
    assert np.array_equal(rgb[5, 5], lut[0]) and np.array_equal(rgb[5, 40], lut[1])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_predict_uncertainty_png_is_the_entropy_of_the_probabilities(tiny_run, tiny_camvid, tmp_path, mode):
    import predict
    from inference.loading import load_for_inference
    from inference.predict import normalize
    from inference.uncertainty import entropy_rgb
    from metrics.calibration import normalized_entropy

    frame = sorted((tiny_camvid / "camvid" / "val").glob("*.png"))[0]
    extra = ["crop_size=64", "stride=48"] if mode == "slide" else []  # slide: the streaming labels
    (rec,) = predict.main(
        [f"checkpoint={tiny_run}", f"inputs=[{frame}]", f"out={tmp_path}", f"mode={mode}", "uncertainty=true", *extra]
    )
    png = Image.open(tmp_path / f"{frame.stem}_uncertainty.png")
    assert png.size == Image.open(frame).size == (128, 96) and rec["uncertainty_png"] == png.filename.split("/")[-1]
    model, cfg = load_for_inference(tiny_run)
    image = np.asarray(Image.open(frame).convert("RGB"))
    s = InferenceSettings(mode=mode, crop_size=(64, 64), stride=(48, 48)) if mode == "slide" else InferenceSettings()
    entropy = normalized_entropy(infer(model, normalize(image, cfg.dataset.mean, cfg.dataset.std), s))[0].numpy()
    assert rec["mean_entropy"] == pytest.approx(float(entropy.mean()), abs=1e-5)
    got, want = np.asarray(png.convert("RGB"))[:, :96], entropy_rgb(entropy)[:, :96]  # left of the colour bar
    assert (got == want).all(-1).mean() > 0.99  # equal but where rounding puts a value on the next of 256 levels
