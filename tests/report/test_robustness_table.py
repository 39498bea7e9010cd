"""scripts/robustness_table.py: validation folders of corrupted evaluations -> one results record."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os

import pytest

from core.results import load_record
from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("robustness_table", REPO / "scripts" / "robustness_table.py")
robustness_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(robustness_table)


def _folder(root, name, miou, mpc, ece, ece_t, temperature):
    folder = root / name
    folder.mkdir(parents=True)
    metrics = {"mIoU": miou, "mPC": mpc, "rPC": mpc / miou, "ECE": ece, "ECE_scaled": ece_t}
    metrics |= {"temperature": temperature, "split": "test", "num_images": 233}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    robustness = {"corruptions": ["gaussian_noise", "motion_blur"], "severities": [1, 2, 3], "seed": 0}
    robustness |= {"seconds_total": 600.0, "cpu": "AMD EPYC [avx512f]", "threads": 2, "load_1min": 1.25}
    robustness |= {"torch": "2.14.1", "git": {"commit": "0123456789abcdef"}}
    (folder / "robustness.json").write_text(json.dumps(robustness))
    return folder


def test_rows_are_the_folders_figures_in_percent_and_measured_comes_from_them(tmp_path, capsys):
    a = _folder(tmp_path, "2026-12-04_19-00-00", 0.64, 0.48, 0.03, 0.01, 1.3)
    b = _folder(tmp_path, "2026-12-05_08-00-00", 0.5, 0.25, 0.05, 0.02, None)
    out = tmp_path / "results" / "robust_demo.yaml"
    assert robustness_table.main([f"Unet={a}", f"ESPNet={b}", "--record", str(out), "--command", "python x.py"]) == 0
    rec = load_record(out)
    unet, espnet = rec.rows
    assert (unet["mIoU"], unet["mPC"], unet["rPC"], unet["ECE"], unet["ECE_scaled"]) == (64.0, 48.0, 75.0, 3.0, 1.0)
    assert unet["temperature"] == 1.3 and espnet["temperature"] is None and espnet["rPC"] == 50.0
    assert unet["minutes"] == 10.0 and unet["grid"].startswith("2 x 3 (gaussian_noise, motion_blur; severities 1, 2, 3")
    m = rec.measured
    assert m["date"] == "2026-12-04 .. 2026-12-05" and m["commit"] == "0123456" and m["threads"] == 2
    assert m["hardware"] == "AMD EPYC [avx512f]" and m["commands"][0] == "python x.py"


def test_a_folder_without_a_corrupted_evaluation_is_one_line(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    with pytest.raises(SystemExit) as e:
        robustness_table.main([f"Unet={tmp_path / 'plain'}", "--record", str(tmp_path / "r.yaml")])
    assert e.value.code == 2 and "metrics.json not found" in capsys.readouterr().err
    assert not (tmp_path / "r.yaml").exists()


def test_a_folder_named_by_out_is_dated_by_its_robustness_json(tmp_path):
    folder = tmp_path / "lite0_test"
    folder.mkdir()
    (folder / "robustness.json").write_text("{}")
    stamp = datetime.datetime(2026, 3, 14, 12, 0).timestamp()
    os.utime(folder / "robustness.json", (stamp, stamp))
    assert robustness_table.evaluation_date(folder) == "2026-03-14"
    assert robustness_table.evaluation_date(tmp_path / "2025-01-02_10-11-12") == "2025-01-02"
