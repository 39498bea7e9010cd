"""scripts/photo_table.py: per-photo time and peak memory of predict.py loops against a budget, as a results record."""

from __future__ import annotations

import importlib.util
import json
import shlex

import pytest
import yaml

from core.results import load_record
from tests.conftest import REPO, error_line

_spec = importlib.util.spec_from_file_location("photo_table", REPO / "scripts" / "photo_table.py")
photo_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(photo_table)


def _loop(folder, times, peaks, failed=()):
    folder.mkdir(parents=True)
    per_image = [
        {"image": f"photos/p{i}.jpg", "width": 400, "height": 300, "timing_s": {"inference": t}, "peak_rss_mib": m}
        for i, (t, m) in enumerate(zip(times, peaks))
    ]
    (folder / "summary.json").write_text(json.dumps({"per_image": per_image, "failed": list(failed)}))
    return folder


def test_rows_budget_claims_and_provenance(tmp_path, capsys):
    fp32 = _loop(tmp_path / "fp32", [2.5, 3.5], [3000.4, 13000.0])
    bf16 = _loop(tmp_path / "bf16", [1.0, 1.5], [2000.0, 2100.0])
    record = tmp_path / "r.yaml"
    argv = [f"loop=fp32={fp32}", f"loop=bf16={bf16}", f"record={record}", "command=python predict.py ..."]
    assert photo_table.main(argv) == 0
    out = capsys.readouterr().out
    assert "fp32: 1 of 2 photos within 3 s and 12 GiB (slowest 3.50 s, highest peak RSS 13000 MiB)." in out
    assert "bf16: 2 of 2 photos within 3 s and 12 GiB (slowest 1.50 s, highest peak RSS 2100 MiB)." in out
    saved = yaml.safe_load(record.read_text())
    assert saved["rows"][0] == {
        "photo": "p0.jpg", "size": "400x300", "MP": 0.12, "s_0": 2.5, "mib_0": 3000, "s_1": 1.0, "mib_1": 2000,
        "within_0": 1, "within_1": 2,
    }  # fmt: skip
    assert saved["measured"]["commands"] == [
        "python predict.py ...",
        "python scripts/photo_table.py " + shlex.join(argv),
    ]
    assert load_record(record).columns[3].header == "fp32: inference s"


def test_failed_photos_and_unequal_loops_are_one_line(tmp_path, capsys):
    bad = _loop(tmp_path / "bad", [1.0], [10.0], failed=["x.jpg"])
    one = _loop(tmp_path / "one", [1.0], [10.0])
    two = _loop(tmp_path / "two", [1.0, 2.0], [10.0, 10.0])
    for argv, line in (
        ([f"loop=a={bad}"], "1 photos failed: ['x.jpg']"),
        ([f"loop=a={two}", f"loop=b={one}"], "loop 'b' has no photo p1.jpg"),
        ([f"loop=a={one}", "seconds=0"], "seconds=0.0: the budget must be positive"),
        ([f"loop=a={one}", "memory_gib=-1"], "memory_gib=-1.0: the budget must be positive"),
        ([f"loop={one}"], "expected '<label>=<predict.py out folder>'"),
    ):
        with pytest.raises(SystemExit) as exit_:
            photo_table.main([*argv, f"record={tmp_path / 'r.yaml'}"])
        assert exit_.value.code == 2
        assert line in error_line(capsys.readouterr().err, "photo_table.py")
    assert not (tmp_path / "r.yaml").exists()
