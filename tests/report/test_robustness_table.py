"""scripts/robustness_table.py: validation folders of corrupted evaluations -> one results record."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os

import pytest

from core.results import load_record
from tests.conftest import REPO, error_line

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
    argv = [f"folder=Unet={a}", f"folder=ESPNet (authors' checkpoint)={b}", f"record={out}", "command=python x.py"]
    assert robustness_table.main(argv) == 0
    assert capsys.readouterr().err == ""
    rec = load_record(out)
    unet, espnet = rec.rows
    assert (unet["mIoU"], unet["mPC"], unet["rPC"], unet["ECE"], unet["ECE_scaled"]) == (64.0, 48.0, 75.0, 3.0, 1.0)
    assert unet["temperature"] == 1.3 and espnet["temperature"] is None and espnet["rPC"] == 50.0
    assert unet["minutes"] == 10.0 and unet["grid"].startswith("2 x 3 (gaussian_noise, motion_blur; severities 1, 2, 3")
    m = rec.measured
    assert m["date"] == "2026-12-04 .. 2026-12-05" and m["commit"] == "0123456" and m["threads"] == 2
    assert m["hardware"] == "AMD EPYC [avx512f]" and m["commands"][0] == "python x.py"
    assert espnet["model"] == "ESPNet (authors' checkpoint)"


def test_the_older_spelling_gives_the_same_record_with_one_deprecation_line(tmp_path, capsys):
    a = _folder(tmp_path, "2026-12-04_19-00-00", 0.64, 0.48, 0.03, 0.01, 1.3)
    new, old = tmp_path / "new.yaml", tmp_path / "old.yaml"
    assert robustness_table.main([f"record={new}", f"folder=Unet={a}", "caption=C.", "command=a", "command=b"]) == 0
    capsys.readouterr()
    argv = ["--record", str(old), "--caption", "C.", "--command", "a", "--command", "b", f"Unet={a}"]
    assert robustness_table.main(argv) == 0
    assert capsys.readouterr().err.splitlines() == [
        "robustness_table.py: --record is deprecated, use record=results/<name>.yaml; --caption is deprecated, use "
        "caption=TEXT; --command is deprecated, use command=CMD; positional arguments are deprecated, use "
        "folder='<label>=<folder>'"
    ]
    new_rec, old_rec = load_record(new), load_record(old)
    assert new_rec.rows == old_rec.rows and new_rec.caption == old_rec.caption == "C."
    assert new_rec.measured["commands"][:2] == old_rec.measured["commands"][:2] == ["a", "b"]


def test_a_folder_without_a_corrupted_evaluation_is_one_line(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    with pytest.raises(SystemExit) as e:
        robustness_table.main([f"folder=Unet={tmp_path / 'plain'}", f"record={tmp_path / 'r.yaml'}"])
    assert e.value.code == 2 and "metrics.json not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        robustness_table.main([f"record={tmp_path / 'r.yaml'}"])
    line = error_line(capsys.readouterr().err, "robustness_table.py")
    assert e.value.code == 2 and "missing folder='<label>=<folder>'" in line
    assert not (tmp_path / "r.yaml").exists()


def test_a_folder_named_by_out_is_dated_by_its_robustness_json(tmp_path):
    folder = tmp_path / "lite0_test"
    folder.mkdir()
    (folder / "robustness.json").write_text("{}")
    stamp = datetime.datetime(2026, 3, 14, 12, 0).timestamp()
    os.utime(folder / "robustness.json", (stamp, stamp))
    assert robustness_table.evaluation_date(folder) == "2026-03-14"
    assert robustness_table.evaluation_date(tmp_path / "2025-01-02_10-11-12") == "2025-01-02"
