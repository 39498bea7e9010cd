"""Records -> CSV tables: columns, units, reported rows, MMSeg metafiles and the atomic write."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import core.records as records
from benchmarking.aggregate import COLUMNS, aggregate, load_reported, rows_from_metafile
from core.records import BenchmarkRecord, find_record_files, load_records, write_record
from tests.conftest import REPO


def _rec(name, fps, miou=None, dataset="camvid", res="64x64", status="ok", **kw):
    return BenchmarkRecord(
        name=name,
        method=name.split("-")[0],
        dataset=dataset,
        resolution=res,
        fps=fps,
        mIoU=miou,
        params=2_500_000,
        gflops=1.5,
        memory_peak_mib=12.0,
        memory_forward_mib=5.0,
        status=status,
        **kw,
    )


def test_record_roundtrip_and_nan(tmp_path):
    rec = _rec("Unet-resnet18", 3.0, 0.5, latency_ms_p50=float("nan"))
    path = write_record(rec, tmp_path / "run" / "benchmark")
    d = json.loads(path.read_text())  # valid JSON: NaN became null
    assert d["latency_ms_p50"] is None and d["fps"] == 3.0 and d["schema"] == 1
    again = write_record(rec, tmp_path / "run" / "benchmark")
    assert again != path  # same timestamp: suffixed, never overwritten
    (tmp_path / "run" / "other").mkdir()
    (tmp_path / "run" / "other" / "x.json").write_text("{}")  # not in a benchmark/ folder: ignored
    (tmp_path / "run" / "benchmark" / "junk.json").write_text("[1, 2]")  # not a record: skipped
    assert len(find_record_files(tmp_path)) == 3
    loaded = load_records(tmp_path)
    assert [r.name for _, r in loaded] == ["Unet-resnet18", "Unet-resnet18"]
    assert loaded[0][1].fps == 3.0


def _reported(folder):
    folder.mkdir(parents=True)
    pd.DataFrame(
        [
            {
                "name": "Unet-resnet18",
                "method": "Unet",
                "fps": 30.0,
                "resolution": "64x64",
                "hardware": "V100",
                "dataset": "camvid",
                "mIoU": 60.0,
                "citation": "hand-made",
            }
        ]
    ).to_csv(folder / "zoo.csv", index=False)
    return folder


def test_aggregate_tables(tmp_path):
    root = tmp_path / "logs"
    write_record(_rec("Unet-resnet18", 4.0, 0.5), root / "a" / "benchmark")
    write_record(_rec("FPN-resnet18", 8.0, 0.25), root / "b" / "benchmark")
    write_record(
        _rec("Unet-bad", None, status="failed", error="ValueError: unknown smp encoder 'bad'"), root / "c" / "benchmark"
    )
    write_record(_rec("Unet-resnet18", 1.0, dataset="cityscapes", res="1024x512"), root / "d" / "benchmark")
    tables = tmp_path / "tables"
    written = aggregate(root, tables, _reported(tables / "reported"))
    assert sorted(p.relative_to(tables).as_posix() for p in written) == [
        "all.csv",
        "camvid/64x64.csv",
        "cityscapes/1024x512.csv",
    ]
    all_ = pd.read_csv(tables / "all.csv")
    assert list(all_.columns[: len(COLUMNS)]) == COLUMNS
    assert len(all_) == 5
    cam = pd.read_csv(tables / "camvid" / "64x64.csv")
    assert len(cam) == 4  # 3 records + 1 reported
    unet = cam[(cam.name == "Unet-resnet18") & (cam.source == "reproduced")].iloc[0]
    assert unet.mIoU == pytest.approx(50.0) and unet.params == pytest.approx(2.5) and unet.GFLOPs == 1.5
    assert unet.memory == 12.0 and unet.status == "ok"
    bad = cam[cam.name == "Unet-bad"].iloc[0]
    assert bad.status == "failed" and "unknown smp encoder" in bad.error and math.isnan(bad.fps)
    rep = cam[cam.source == "reported"].iloc[0]
    assert rep.fps == 30.0 and rep.citation == "hand-made" and rep.hardware == "V100"
    assert len(pd.read_csv(tables / "cityscapes" / "1024x512.csv")) == 1


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_interrupted_aggregate_leaves_old_csv(tmp_path, monkeypatch, fail_at):
    root, tables = tmp_path / "logs", tmp_path / "tables"
    write_record(_rec("Unet-resnet18", 4.0, 0.5), root / "a" / "benchmark")
    aggregate(root, tables, tmp_path / "none")
    before = (tables / "all.csv").read_text()
    write_record(_rec("FPN-resnet18", 8.0, 0.25), root / "b" / "benchmark")

    def interrupt(*a, **k):
        raise KeyboardInterrupt("simulated Ctrl-C while writing")

    monkeypatch.setattr(records.os, fail_at, interrupt)
    with pytest.raises(KeyboardInterrupt):
        aggregate(root, tables, tmp_path / "none")
    monkeypatch.undo()
    assert (tables / "all.csv").read_text() == before  # old table intact, not half-written
    assert [p.name for p in tables.rglob("*") if p.is_file()] == ["all.csv", "64x64.csv"]  # no temp files left
    aggregate(root, tables, tmp_path / "none")
    assert len(pd.read_csv(tables / "all.csv")) == 2


def test_reported_csv_must_have_columns(tmp_path):
    (tmp_path / "bad.csv").write_text("name,fps\nx,1\n")
    with pytest.raises(ValueError, match=r"bad.csv.*lacks columns .*method"):
        load_reported(tmp_path)


def test_shipped_reported_tables():
    df = load_reported(REPO / "tables" / "reported")
    files = sorted((REPO / "tables" / "reported").glob("*.csv"))
    assert len(df) == sum(len(pd.read_csv(p)) for p in files) and (df.source == "reported").all()
    assert df.citation.notna().all() and (df.citation.str.len() > 10).all()
    assert df.mIoU.between(30, 90).all()
    assert set(df.method) >= {"HRNet", "OCR", "MS-OCR", "SegFormer", "Mask2Former", "DeepLabV3+", "SegMAN"}
    assert df.resolution.str.fullmatch(r"\d+x\d+").all()
    assert df.hardware[df.fps.notna()].notna().all()  # every reported fps says on which hardware
    segformer_b0 = df[(df.name == "SegFormer-B0") & (df.dataset == "cityscapes")].iloc[0]
    assert (segformer_b0.fps, segformer_b0.mIoU) == (4.74, 76.54)  # MMSeg configs/segformer/README.md


def test_mmseg_metafile_rows():
    meta = {
        "Models": [
            {
                "Name": "deeplabv3plus_r50-d8_512x1024_40k_cityscapes",
                "In Collection": "DeepLabV3+",
                "Metadata": {
                    "backbone": "R-50-D8",
                    "crop size": "(512,1024)",
                    "inference time (ms/im)": [
                        {
                            "value": 253.81,
                            "hardware": "V100",
                            "backend": "PyTorch",
                            "batch size": 1,
                            "mode": "FP32",
                            "resolution": "(512,1024)",
                        }
                    ],
                },
                "Results": [{"Task": "Semantic Segmentation", "Dataset": "Cityscapes", "Metrics": {"mIoU": 79.61}}],
                "Config": "configs/deeplabv3plus/x.py",
                "Weights": "https://example/x.pth",
            }
        ]
    }
    (row,) = rows_from_metafile(meta, "deeplabv3plus/metafile.yaml")
    assert row["fps"] == pytest.approx(1000 / 253.81)
    assert row["resolution"] == "1024x512" and row["dataset"] == "cityscapes" and row["mIoU"] == 79.61
    assert row["source"] == "reported" and row["hardware"] == "V100" and row["precision"] == "32-true"


@pytest.mark.parametrize("hard_links", [True, False])
def test_records_of_the_same_second_never_overwrite_each_other(tmp_path, monkeypatch, hard_links):
    """Two processes writing records of the same second, backend, precision and resolution: both see the name free
    (an existence check passes for both, simulated), each must still get a file of its own."""
    monkeypatch.setattr(records.Path, "exists", lambda self, *a, **k: False)
    if not hard_links:  # a file system without hard links: the O_EXCL claim

        def no_link(src, dst, *a, **k):
            raise PermissionError(1, "Operation not permitted", str(dst))

        monkeypatch.setattr(records.os, "link", no_link)
    folder = tmp_path / "run" / "benchmark"
    first, second = (_rec("Unet-resnet18", fps, timestamp="2026-01-01T00:00:00") for fps in (3.0, 4.0))
    assert first.filename() == second.filename() == "2026-01-01T00-00-00_eager_32-true_64x64.json"
    a, b = write_record(first, folder), write_record(second, folder)
    assert (a.name, b.name) == (first.filename(), "2026-01-01T00-00-00_eager_32-true_64x64_1.json")
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == sorted([a.name, b.name])  # no temporary file left
    assert sorted(r.fps for _, r in load_records(tmp_path)) == [3.0, 4.0]
