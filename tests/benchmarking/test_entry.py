"""benchmark.py end to end: multirun with a failing member, then `aggregate` and `plot` subcommands."""

from __future__ import annotations

from xml.etree import ElementTree

import pandas as pd
import pytest
from PIL import Image

from benchmarking.cli import run_subcommand
from tests.conftest import REPO, call_hydra_cli, error_line


@pytest.mark.slow
def test_multirun_aggregate_plot(tmp_path, capsys):
    logs, tables = tmp_path / "logs", tmp_path / "tables"
    argv = ["-m", "model.encoder=resnet18,mobilenet_v2,does_not_exist", "resolution=64x64", "warmup=1"]
    code = call_hydra_cli("benchmark", [*argv, "iterations=2", "device=cpu", "count_flops=false", f"LOGDIR={logs}"])
    # the failing member wrote its row, the sweep went on, and the exit status says a member failed
    assert code == 1
    line = error_line(capsys.readouterr().err, "benchmark.py")
    assert "benchmark.py: error: 1 measurement(s) failed; first: Unet-does_not_exist: ValueError: unknown smp" in line
    records = sorted((logs / "benchmark" / "multirun").glob("*/*/benchmark/*.json"))
    assert len(records) == 3

    assert (
        run_subcommand("aggregate", [f"root={logs}", f"tables={tables}", f"reported={REPO / 'tables' / 'reported'}"])
        == 0
    )
    df = pd.read_csv(tables / "camvid" / "64x64.csv")
    assert sorted(df.name) == ["Unet-does_not_exist", "Unet-mobilenet_v2", "Unet-resnet18"]
    assert dict(zip(df.name, df.status)) == {
        "Unet-does_not_exist": "failed",
        "Unet-mobilenet_v2": "ok",
        "Unet-resnet18": "ok",
    }
    assert df.set_index("name").loc["Unet-does_not_exist", "error"].startswith("ValueError: unknown smp encoder")
    reported = pd.concat(pd.read_csv(p) for p in sorted((REPO / "tables" / "reported").glob("*.csv")))
    assert (pd.read_csv(tables / "all.csv").source == "reported").sum() == len(reported)
    cs = reported[(reported.dataset == "cityscapes") & (reported.resolution == "2048x1024")]
    assert sorted(pd.read_csv(tables / "cityscapes" / "2048x1024.csv").name) == sorted(cs.name)

    # the reproduced rows have no mIoU (evaluate=false): plot the reported Cityscapes table
    assert run_subcommand("plot", ["dataset=cityscapes", "resolution=2048x1024", f"tables={tables}"]) == 0
    plots = tables / "plots"
    assert sorted(p.name for p in plots.iterdir()) == ["cityscapes_2048x1024.png", "cityscapes_2048x1024.svg"]
    png = Image.open(plots / "cityscapes_2048x1024.png")
    svg = ElementTree.parse(plots / "cityscapes_2048x1024.svg").getroot()
    assert png.format == "PNG" and svg.tag == "{http://www.w3.org/2000/svg}svg"
    _, _, svg_w, svg_h = map(float, svg.get("viewBox").split())
    assert png.width / png.height == pytest.approx(svg_w / svg_h, rel=0.01)  # one figure, two formats


def test_plot_arguments_are_checked(tmp_path, capsys):
    assert run_subcommand("plot", ["dataset=camvid", "resolution=64x64", f"tables={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "no table" in err and "aggregate" in err
    assert run_subcommand("plot", ["datset=camvid"]) == 2
    assert "bad argument 'datset=camvid'" in capsys.readouterr().err
