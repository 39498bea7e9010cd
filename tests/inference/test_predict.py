"""predict.py on real photos (../shared/data/photos): label PNG, overlay with legend, JSON; slide for big images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import predict
from inference.predict import list_images, settings_for
from inference.settings import InferenceSettings
from inference.visualize import overlay_with_legend
from tests.inference.conftest import CAMVID_CLASSES

PHOTOS = ["chelsea.png", "camera.png", "rocket.jpg"]  # 451x300 RGB, 512x512 grey, 640x427 JPEG


@pytest.mark.slow
def test_predict_writes_label_overlay_json(tiny_run, shared_data, tmp_path):
    photos = [shared_data / "photos" / p for p in PHOTOS]
    records = predict.main([f"checkpoint={tiny_run}", f"inputs=[{','.join(map(str, photos))}]", f"out={tmp_path}"])
    assert [r["image"] for r in records] == [str(p) for p in photos]
    for photo, r in zip(photos, records):
        w, h = Image.open(photo).size
        label = np.asarray(Image.open(tmp_path / f"{photo.stem}_label.png"))
        assert label.shape == (h, w) and label.dtype == np.uint8 and label.max() < 11
        overlay = Image.open(tmp_path / f"{photo.stem}_overlay.png")
        assert overlay.mode == "RGB" and overlay.height == h and overlay.width > w  # legend on the right
        found = {CAMVID_CLASSES[k]: (label == k).mean() for k in np.unique(label)}
        rec = json.loads((tmp_path / f"{photo.stem}.json").read_text())
        assert rec == r and (rec["width"], rec["height"]) == (w, h) and rec["inference"]["mode"] == "whole"
        assert set(rec["class_fractions"]) == set(found)
        assert all(abs(rec["class_fractions"][c] - f) < 1e-6 for c, f in found.items())
        assert sum(rec["class_fractions"].values()) == pytest.approx(1.0, abs=1e-5)
        assert (
            set(rec["timing_s"]) == {"read", "inference", "inference_cpu", "write", "total"} and rec["peak_rss_mib"] > 0
        )
    assert json.loads((tmp_path / "summary.json").read_text())["images"] == 3


@pytest.mark.slow
def test_predict_slide_one_window_equals_whole_and_flip_runs(tiny_run, shared_data, tmp_path):
    photo = shared_data / "photos" / "chelsea.png"
    ckpt = str(tiny_run / "checkpoints" / "best.ckpt")
    source = [f"checkpoint={ckpt}", f"inputs=[{photo}]"]
    predict.main([*source, f"out={tmp_path / 'whole'}", "mode=whole"])
    # a window as large as the image is one forward of the whole image: identical labels
    predict.main([*source, f"out={tmp_path / 'one'}", "mode=slide", "crop_size=512", "stride=400"])
    [r] = predict.main(
        [
            *source,
            f"out={tmp_path / 'slide'}",
            "mode=slide",
            "crop_size=[128,160]",
            "stride=96",
            "flip=true",
            "accumulate_on=cpu",
            "scales=[0.5]",
        ]
    )
    whole, one = (np.asarray(Image.open(tmp_path / d / "chelsea_label.png")) for d in ("whole", "one"))
    assert np.array_equal(whole, one)
    assert r["inference"] | {} == {
        "mode": "slide",
        "crop_size": [128, 160],
        "stride": [96, 96],
        "scales": [0.5],
        "flip": True,
        "window_batch": 4,
        "accumulate_on": "cpu",
        "resize": None,
    }
    assert np.asarray(Image.open(tmp_path / "slide" / "chelsea_label.png")).shape == (300, 451)


def test_auto_mode_slides_large_images():
    base = InferenceSettings()
    assert settings_for(base, "auto", 300, 451, 2048 * 1024, (256, 320)) is base
    big = settings_for(base, "auto", 2988, 5312, 2048 * 1024, (256, 320))
    assert (big.mode, big.crop_size, big.stride) == ("slide", (256, 320), (170, 213))  # stride 2/3 of the window
    own = settings_for(InferenceSettings(mode="slide", crop_size=512, stride=300), "auto", 4000, 6000, 100, (1, 1))
    assert (own.crop_size, own.stride) == ((512, 512), (300, 300))
    assert settings_for(own, "whole", 4000, 6000, 100, (1, 1)).mode == "whole"


def test_auto_mode_counts_pixels_at_the_test_scale():
    base = InferenceSettings(resize=[1024, 512])
    assert settings_for(base, "auto", 2988, 5312, 1024 * 512, (256, 320)) is base  # 910x512 after the resize
    assert settings_for(base, "auto", 2988, 5312, 400 * 400, (256, 320)).mode == "slide"


@pytest.mark.slow
def test_production_preset_on_a_large_photo(tiny_run, shared_data, tmp_path):
    """preset=production: the photo runs at the 640x480 test scale (one whole forward), labels at full size."""
    photos = sorted(
        (shared_data / "photos").glob("*.jpg"), key=lambda p: -Image.open(p).size[0] * Image.open(p).size[1]
    )
    big = photos[0]
    w, h = Image.open(big).size
    [r] = predict.main([f"checkpoint={tiny_run}", f"inputs=[{big}]", f"out={tmp_path}", "preset=production"])
    assert r["inference"]["mode"] == "whole" and r["inference"]["resize"] == [640, 480]
    assert (r["width"], r["height"]) == (w, h) and w * h > 10_000_000
    label = np.asarray(Image.open(tmp_path / f"{big.stem}_label.png"))
    assert label.shape == (h, w) and label.max() < 11
    with pytest.raises(ValueError, match=r"unknown inference preset 'fast'; available: \['production'\]"):
        predict.main([f"checkpoint={tiny_run}", f"inputs=[{big}]", f"out={tmp_path}", "preset=fast"])


def test_list_images_and_errors(shared_data, tmp_path):
    files = list_images([shared_data / "photos"])
    assert len(files) == 22 and not any(f.suffix == ".txt" for f in files)  # licence files skipped
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images([tmp_path / "nope.jpg"])
    with pytest.raises(FileNotFoundError, match="no images"):
        list_images([tmp_path])


def test_overlay_legend_lists_classes_found_largest_first():
    image = np.full((120, 160, 3), 200, dtype=np.uint8)
    labels = np.zeros((120, 160), dtype=np.uint8)
    labels[:, :40] = 3  # 25 % Road, 75 % Sky
    palette = [[128, 128, 128], [128, 0, 0], [0, 0, 0], [128, 64, 128]]
    canvas = overlay_with_legend(image, labels, palette, ["Sky", "Building", "Pole", "Road"], alpha=0.5)
    px = np.asarray(canvas)
    assert canvas.height == 120 and canvas.width > 160
    assert tuple(px[60, 100]) == (164, 164, 164) and tuple(px[60, 10]) == (164, 132, 164)  # 50/50 blend
    legend = px[:, 160:].reshape(-1, 3)
    colours = {tuple(c) for c in legend}
    assert (128, 128, 128) in colours and (128, 64, 128) in colours and (128, 0, 0) not in colours
    first = np.argwhere((px[:, 160:] == (128, 128, 128)).all(-1))[:, 0].min()
    second = np.argwhere((px[:, 160:] == (128, 64, 128)).all(-1))[:, 0].min()
    assert first < second  # Sky (75 %) listed before Road (25 %)


def test_calibration_overrides_reach_the_backend_and_need_one(tiny_run, monkeypatch):
    """``calibration.*`` overrides of predict.py compose ``config/benchmark.yaml`` as benchmark.py does (they are
    not run-config keys), and without an int8 backend they fail in one line."""
    import benchmarking.backends.module as module

    seen = {}

    def fake_runner(model, example, name, precision, device, options):
        seen.update(name=name, precision=precision, note=options.calibration_note)
        return lambda x: model(x)["out"]

    monkeypatch.setattr(module, "build_runner", fake_runner)
    args = predict.parse_args(
        [f"checkpoint={tiny_run}", "inputs=[x.png]", "backend=openvino:int8", "calibration.images=3"]
    )
    predict.load_predictor(args)
    assert seen == {
        "name": "openvino",
        "precision": "int8",
        "note": "train (3 images, first and last convolution in float, nncf.quantize)",
    }
    args = predict.parse_args([f"checkpoint={tiny_run}", "inputs=[x.png]", "calibration.images=3"])
    with pytest.raises(ValueError, match=r"^calibration.images=3: calibration.\* overrides need backend="):
        predict.load_predictor(args)
