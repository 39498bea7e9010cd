"""benchmark.py compare: calibration columns (ECE, MCE, after temperature scaling) from hand-made run folders."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from benchmarking.compare import compare
from benchmarking.like_for_like import eval_setting
from tests.benchmarking.test_compare import write_summary


def test_ece_columns_from_summaries_temperature_files_and_test_records(tmp_path):
    root = tmp_path / "logs"
    eces = {1: (0.05, 0.20), 2: (0.03, 0.10), 3: (0.04, 0.15)}
    for seed, (ece, mce) in eces.items():
        run = write_summary(
            root,
            f"unet/{seed}",
            ["model.arch=Unet"],
            seed,
            0.6,
            last={"epoch": 4, "train_loss": 0.5, "val_loss": 0.7, "ECE": ece + 0.01, "MCE": mce},
        )
        summary = json.loads((run / "summary.json").read_text())
        summary["best"].update(ECE=ece, MCE=mce)
        (run / "summary.json").write_text(json.dumps(summary))
        (run / "calibration").mkdir()
        temperature = {
            "temperature": 1.5,
            "checkpoint": "checkpoints/best.ckpt",
            "ECE_after": ece / 2,
            "MCE_after": 0.05,
        }
        (run / "calibration" / "temperature.json").write_text(json.dumps(temperature))
        (run / "validation" / "t").mkdir(parents=True)
        test = {"split": "test", "checkpoint": str(run / "checkpoints" / "best.ckpt"), "mIoU": 0.5, "ECE": 2 * ece}
        test |= {"ECE_scaled": ece, "temperature": 1.5, "precision": "32-true", "num_images": 3}
        (run / "validation" / "t" / "metrics.json").write_text(json.dumps(test))

    compare(root, tmp_path / "best", metric="ECE", warn=print)
    runs = pd.read_csv(tmp_path / "best" / "runs.csv").set_index("seed")
    for seed, (ece, mce) in eces.items():
        assert runs.loc[seed, "ECE"] == pytest.approx(100 * ece) and runs.loc[seed, "MCE"] == pytest.approx(100 * mce)
        assert runs.loc[seed, "last_ECE"] == pytest.approx(100 * ece + 1)
        assert runs.loc[seed, "ECE_scaled"] == pytest.approx(50 * ece) and runs.loc[seed, "temperature"] == 1.5
    exp = pd.read_csv(tmp_path / "best" / "experiments.csv").iloc[0]
    assert exp["ECE_mean"] == pytest.approx(4.0) and exp["ECE_runs"] == "5.00, 3.00, 4.00"
    assert exp["best_run"] == "unet/2"  # the lowest ECE
    md = re.sub(r" *\| *", " | ", (tmp_path / "best" / "experiments.md").read_text())
    assert "| 5.00, **3.00**, 4.00 |" in md

    compare(root, tmp_path / "scaled", metric="ECE_scaled", warn=print)
    assert pd.read_csv(tmp_path / "scaled" / "experiments.csv").iloc[0]["ECE_scaled_mean"] == pytest.approx(2.0)
    compare(root, tmp_path / "test", metric="ECE_scaled", select="test-at-best-val", warn=print)
    exp = pd.read_csv(tmp_path / "test" / "experiments.csv").iloc[0]
    assert exp["ECE_scaled_runs"] == "5.00, 3.00, 4.00" and "temperature 1.5" in exp["inference"]
    assert eval_setting(test) == "test, whole, scales [1.0], 3 images, 32-true, temperature 1.5"
