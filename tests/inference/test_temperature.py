"""validation.py fit_temperature=true on a tiny trained run: the stored temperature, its use by every loader, failures
that leave the run folder as it was; the pixel sample of the fit."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn

import validation
from core.errors import run_entry as run_in_process
from core.run_folder import RunFolder
from inference import InferenceSettings
from inference.loading import load_for_inference
from inference.temperature import sample_view_logits, set_temperature, temperature_of
from tests.conftest import error_line


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """The tiny run without its validation/calibration folders, checkpoints linked (the session's run stays as it
    was)."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst, ignore=shutil.ignore_patterns("checkpoints", "validation", "calibration"))
    (dst / "checkpoints").mkdir()
    for ckpt in (tiny_run / "checkpoints").glob("*.ckpt"):
        (dst / "checkpoints" / ckpt.name).symlink_to(ckpt)
    return dst


def newest_validation(run):
    return sorted((run / "validation").iterdir())[-1]


@pytest.mark.slow
def test_fit_temperature_stores_t_and_every_loader_applies_it(run_copy, capsys):
    run = RunFolder(run_copy)
    plain = validation.main([f"checkpoint={run.root}", "num_vis=0"])
    assert plain["temperature"] is None and 0 <= plain["ECE"] <= plain["MCE"] <= 1 and "ECE_scaled" not in plain
    plain_dir = newest_validation(run.root)
    # training-time validation: the same probabilities, the same bins (Lightning logs float32)
    summary = json.loads(run.summary.read_text())
    assert summary["best"]["ECE"] == pytest.approx(plain["ECE"], rel=1e-6) == summary["last"]["ECE"]
    assert summary["best"]["MCE"] == pytest.approx(plain["MCE"], rel=1e-6)
    assert (plain_dir / "reliability.png").stat().st_size > 10_000
    capsys.readouterr()

    fitted = validation.main([f"checkpoint={run.root}", "fit_temperature=true", "fit_pixels=5000", "num_vis=0"])
    out = capsys.readouterr().out
    t = json.loads(run.temperature_file.read_text())
    assert t["temperature"] == fitted["temperature"] > 0 and t["split"] == "val" and t["images"] == 3
    assert t["pixels"] == 5000 < t["labelled_pixels"] and t["nll_after"] <= t["nll_before"]
    assert t["checkpoint"] == "checkpoints/best.ckpt" and len(t["checkpoint_sha256"]) == 64
    assert t["ECE_before"] == fitted["ECE"] == plain["ECE"]  # the model's own probabilities, T = 1
    assert (
        t["ECE_after"] == fitted["ECE_scaled"] and t["validation"] == f"validation/{newest_validation(run.root).name}"
    )
    assert f"temperature T = {t['temperature']:.4f}" in out and "after temperature T =" in out
    fit_dir = run.root / t["validation"]
    # argmax unchanged (one view): the same confusion matrix, hence the same mIoU
    assert torch.equal(torch.load(fit_dir / "ConfusionMatrix.pt"), torch.load(plain_dir / "ConfusionMatrix.pt"))
    assert fitted["mIoU"] == plain["mIoU"]
    assert set(json.loads((fit_dir / "metrics.json").read_text())) >= {"ECE", "MCE", "ECE_scaled", "MCE_scaled"}
    bins = (fit_dir / "calibration_bins.csv").read_text().splitlines()
    assert len(bins) == 1 + 2 * 15 and bins[0] == "temperature,lower,upper,pixels,confidence,accuracy"

    model, cfg = load_for_inference(run.root)  # validation.py, predict.py, benchmark.py load through here
    assert temperature_of(model) == cfg.loaded_from.temperature == t["temperature"]
    again = validation.main([f"checkpoint={run.root}", "num_vis=0"])
    assert again["temperature"] == t["temperature"] and again["ECE_scaled"] == pytest.approx(t["ECE_after"], abs=1e-12)
    last, _ = load_for_inference(run.root, which="last")  # T was fitted for best.ckpt
    assert temperature_of(last) is None


@pytest.mark.slow
def test_failed_fit_leaves_the_run_folder_as_it_was(run_copy, capsys, monkeypatch):
    run = RunFolder(run_copy)
    run.calibration_dir.mkdir()
    run.temperature_file.write_text(json.dumps({"temperature": 1.5}))
    before = run.temperature_file.read_bytes()

    def boom(*a, **k):
        raise ValueError("temperature fit failed: T=0, NLL 1 -> nan")

    monkeypatch.setattr("metrics.temperature.fit_temperature", boom)
    assert run_in_process("validation.py", validation.main, [f"checkpoint={run.root}", "fit_temperature=true"]) == 1
    assert "temperature fit failed" in error_line(capsys.readouterr().err, "validation.py")
    assert run.temperature_file.read_bytes() == before and not run.validation_root.exists()

    with pytest.raises(SystemExit) as exit_:
        validation.parse_args([f"checkpoint={run.root}", "fit_temperature=true", "split=test"])
    assert exit_.value.code == 2
    assert "fit_temperature=true fits on the val split" in error_line(capsys.readouterr().err, "validation.py")

    run.temperature_file.write_text(json.dumps({"temperature": -2}))
    with pytest.raises(ValueError, match=r"temperature.json: key 'temperature' must be a finite number > 0, got -2"):
        load_for_inference(run.root)


@pytest.mark.slow
def test_a_checkpoint_outside_any_run_keeps_its_temperature_in_its_pretrained_folder(tiny_run, tmp_path):
    """Author weights or a copied ``.ckpt``: T goes to ``LOGDIR/<dataset>/pretrained/<stem>/calibration/`` (where
    its validation folders go) and every later loading of that file applies it."""
    ckpt = tmp_path / "copied.ckpt"
    shutil.copyfile(tiny_run / "checkpoints" / "best.ckpt", ckpt)
    logdir = tmp_path / "logs"
    fitted = validation.main(
        [f"checkpoint={ckpt}", "fit_temperature=true", "fit_pixels=2000", "num_vis=0", f"LOGDIR={logdir}"]
    )
    model, cfg = load_for_inference(ckpt, [f"LOGDIR={logdir}"])
    folder = RunFolder(logdir / str(cfg.dataset.name) / "pretrained" / "copied")
    stored = json.loads(folder.temperature_file.read_text())
    assert stored["temperature"] == fitted["temperature"] == temperature_of(model) == cfg.loaded_from.temperature
    assert stored["checkpoint"] == str(ckpt) and len(list(folder.validation_root.iterdir())) == 1
    other, _ = load_for_inference(ckpt, [f"LOGDIR={tmp_path / 'elsewhere'}"])
    assert temperature_of(other) is None


class PerPixel(nn.Module):
    """A 1x1 convolution: exactly flip-equivariant, so a flipped view read at the mirrored column equals the plain
    one."""

    output_names = ("out",)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return {"out": self.conv(x)}


def test_pixel_sample_is_deterministic_and_reads_flipped_views_mirrored():
    g = torch.Generator().manual_seed(0)
    batches = [
        {"image": torch.randn(2, 3, 6, 9, generator=g), "mask": torch.randint(0, 4, (2, 6, 9), generator=g)}
        for _ in range(2)
    ]
    batches[0]["mask"][0, :3] = 255  # 27 pixels not labelled
    model = set_temperature(PerPixel().eval(), 3.0)  # ignored: the raw logits are sampled
    s = InferenceSettings(flip=True)
    logits, labels, labelled = sample_view_logits(model, batches, s, 4, 255, num_images=4, max_pixels=60)
    assert logits.shape == (2, 60, 4) and labels.shape == (60,) and labelled == 4 * 54 - 27
    assert torch.allclose(logits[1], logits[0], atol=1e-6)  # flipped view at the mirrored column
    again, labels2, _ = sample_view_logits(model, batches, s, 4, 255, num_images=4, max_pixels=60)
    assert torch.equal(again, logits) and torch.equal(labels2, labels)
    x, y = batches[1]["image"][1], batches[1]["mask"][1].reshape(-1)
    with torch.no_grad():
        raw = model.conv(x.unsqueeze(0))[0].reshape(4, -1).T  # the last image's 15 pixels are the last 15 sampled
    dist, where = (logits[0, -15:, None] - raw[None]).abs().amax(-1).min(dim=1)
    assert bool((dist < 1e-5).all()) and len(set(where.tolist())) == 15 and torch.equal(labels[-15:], y[where])
    assert temperature_of(model) == 3.0
