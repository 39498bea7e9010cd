"""fps-vs-mIoU plot: which methods are coloured, files written, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarking.plot import interesting_methods, plot_table, plottable


def _table():
    rows = [
        ("A-s", "A", 50.0, 60.0, "reproduced"),
        ("A-l", "A", 10.0, 70.0, "reproduced"),
        ("B-s", "B", 5.0, 65.0, "reported"),
        ("C-l", "C", 1.0, 80.0, "reported"),
        ("A-l", "A", 12.0, 71.0, "reported"),
        ("D-x", "D", 2.0, 50.0, "reported"),
        ("E-failed", "E", None, None, "reproduced"),
    ]
    df = pd.DataFrame(rows, columns=["name", "method", "fps", "mIoU", "source"])
    df["status"] = ["ok"] * 6 + ["failed"]
    return df


def test_plottable_drops_failed_and_missing():
    assert list(plottable(_table()).name) == ["A-s", "A-l", "B-s", "C-l", "A-l", "D-x"]


def test_interesting_methods():
    d = plottable(_table())
    # front: (50,60) A, (12,71) A, (1,80) C; B (5,65) dominated by A (12,71); D dominated
    assert interesting_methods(d, "pareto") == ["A", "C"]
    assert interesting_methods(d, "reproduced") == ["A"]
    assert interesting_methods(d, "B,D") == ["B", "D"]
    with pytest.raises(ValueError, match=r"\['Z'\] not in the table; valid: \['A', 'B', 'C', 'D'\]"):
        interesting_methods(d, "B,Z")


def test_plot_writes_png_and_svg(tmp_path):
    paths = plot_table(_table(), tmp_path / "plots" / "camvid_64x64", title="camvid @ 64x64")
    assert [p.name for p in paths] == ["camvid_64x64.png", "camvid_64x64.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].stat().st_size > 10_000
    svg = paths[1].read_text()
    assert "Pareto front" in svg and "A (reproduced)" in svg and "C (reported)" in svg


def test_plot_nothing_to_plot(tmp_path):
    df = _table().iloc[[6]]
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_table(df, tmp_path / "x")
