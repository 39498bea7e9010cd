"""scripts/reference_table.py: segbench's measurements of published models beside their published rows."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
import yaml

from core.records import BenchmarkRecord, write_record
from tests.conftest import REPO, error_line

_spec = importlib.util.spec_from_file_location("reference_table", REPO / "scripts" / "reference_table.py")
reference_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference_table)

PUBLISHED = pd.DataFrame(
    [
        # name, dataset, resolution, fps, mIoU, hardware
        ("Net-A", "ade20k", "512x512", 20.5, 44.1, "V100"),
        ("Net-A", "ade20k", "640x640", 15.0, 45.0, "V100"),
        ("Net-A", "cityscapes", "2048x1024", 3.0, 80.0, "V100"),
        ("Net-B", "ade20k", "640x640", None, 53.08, None),
    ],
    columns=["name", "dataset", "resolution", "fps", "mIoU", "hardware"],
)


def _member(folder, name, fps, **kw):
    rec = BenchmarkRecord(
        name=name, method="X", backend="eager", precision="32-true", fps=fps, latency_ms_p50=1000 / fps, params=5_250_000,
        gflops=12.34, memory_peak_mib=1234.4, timestamp="2026-01-01T00:00:01", threads=2,
        hardware_profile="CPU X [avx2]", torch_version="2.14.1", commit="abc1234", load_1min=0.5, **kw,
    )  # fmt: skip
    write_record(rec, folder / "benchmark")


def test_rows_pair_measurements_with_the_published_row(tmp_path, capsys):
    reported = tmp_path / "reported"
    reported.mkdir()
    PUBLISHED.to_csv(reported / "zoo.csv", index=False)
    _member(tmp_path / "a", "Net-A (mmseg)", 0.5)
    _member(tmp_path / "b", "Net-B (mmseg)", 0.25, status="failed", error="ValueError: too large")
    record = tmp_path / "results" / "ref.yaml"
    argv = [f"member=Net-A={tmp_path / 'a'}", f"member=Net-B={tmp_path / 'b'}", f"reported={reported}"]
    assert reference_table.main([*argv, f"record={record}", "caption=test"]) == 1  # Net-B failed
    out = capsys.readouterr().out
    cells = [[c.strip() for c in ln.split("|")[1:-1]] for ln in out.splitlines() if ln.startswith("| Net-")]
    # the 512x512 published row of Net-A on ADE20K; Net-B has only 640x640 and no published fps
    # printed as the docs render the record (best fps in bold, — where a failed member has no number)
    assert cells[0] == ["Net-A", "eager 32-true", "5.25", "12.3", "**0.500**", "2000", "1234", "44.10", "20.5",
                        "V100, 512x512"]  # fmt: skip
    assert cells[1] == ["Net-B", "eager 32-true", "—", "—", "failed: ValueError: too large", "—", "—", "53.08", "",
                        "hardware not stated, 640x640"]  # fmt: skip
    saved = yaml.safe_load(record.read_text())
    assert saved["rows"][0] == {
        "model": "Net-A", "precision": "eager 32-true", "reported_mIoU": 44.1, "reported_fps": "20.5",
        "reported_setting": "V100, 512x512", "params_M": 5.25, "GFLOPs": 12.34, "fps": 0.5, "p50_ms": 2000,
        "peak_MiB": 1234,
    }  # fmt: skip
    assert saved["measured"]["hardware"] == "CPU X [avx2]" and saved["measured"]["commit"] == "abc1234"
    assert saved["measured"]["commands"][-1].startswith("python scripts/reference_table.py member=Net-A=")


def test_unknown_published_name_and_empty_folder_are_one_line(tmp_path, capsys):
    reported = tmp_path / "reported"
    reported.mkdir()
    PUBLISHED.to_csv(reported / "zoo.csv", index=False)
    _member(tmp_path / "a", "Net-A (mmseg)", 0.5)
    for argv, line in (
        ([f"member=Net-C={tmp_path / 'a'}"], "no published row 'Net-C' on ade20k; published: ['Net-A', 'Net-B']"),
        ([f"member=Net-A={tmp_path / 'none'}"], "expected '<reported name>=<folder>' with benchmark records"),
    ):
        with pytest.raises(SystemExit) as exit_:
            reference_table.main([*argv, f"reported={reported}"])
        assert exit_.value.code == 2
        assert line in error_line(capsys.readouterr().err, "reference_table.py")


def test_the_shipped_published_rows_hold_every_sweep_member():
    """Every model of scripts/reference_sweep.sh has its published ADE20K row."""
    sweep = (REPO / "scripts" / "reference_sweep.sh").read_text()
    names = [
        line.strip().strip('"').split("|")[0]
        for line in sweep.splitlines()
        if line.strip().startswith('"') and "|" in line
    ]
    table = pd.concat([pd.read_csv(f) for f in (REPO / "tables" / "reported").glob("*.csv")])
    assert len(names) == 10
    for name in names:
        assert reference_table.reported_row(table, name, "ade20k")["mIoU"] > 40
