"""``benchmark.py compare``: statistics against scipy, grouping, statuses, and end to end on real training runs."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmarking.cli import run_subcommand
from benchmarking.compare import (
    assign_configurations,
    build_parser,
    compare,
    configuration_overrides,
    describe,
    read_runs,
    welch_p,
)
from core.liveness import effective_status, process_start
from core.measure import hardware_profile
from core.records import BenchmarkRecord, write_record
from tests.conftest import TINY_RUN, call_hydra_cli, run_entry

A = [71.2, 70.4, 72.9]
B = [68.0, 69.5, 67.1, 68.8]


# ------------------------------------------------------------------------------------------ statistics
def test_describe_matches_scipy_and_closed_form():
    d = describe(A)
    mean = sum(A) / 3
    s = math.sqrt(sum((v - mean) ** 2 for v in A) / 2)  # sample std, ddof 1
    assert d["n"] == 3 and d["mean"] == pytest.approx(mean) and d["std"] == pytest.approx(s)
    assert d["std"] == pytest.approx(stats.tstd(A))
    lo, hi = stats.t.interval(0.95, df=2, loc=mean, scale=stats.sem(A))
    assert d["ci95"] == pytest.approx((hi - lo) / 2)
    assert d["ci95"] == pytest.approx(4.302652729911275 * s / math.sqrt(3))  # t_{0.975, 2}
    assert (d["min"], d["max"]) == (70.4, 72.9)


def test_describe_small_samples():
    one = describe([70.0])
    assert one["n"] == 1 and one["mean"] == 70.0 and math.isnan(one["std"]) and math.isnan(one["ci95"])
    none = describe([None, float("nan")])
    assert none["n"] == 0 and math.isnan(none["mean"])


def test_welch_p_matches_scipy_and_welch_satterthwaite():
    p = welch_p(A, B)
    assert p == pytest.approx(stats.ttest_ind(A, B, equal_var=False).pvalue)
    va, vb = np.var(A, ddof=1) / len(A), np.var(B, ddof=1) / len(B)
    t = (np.mean(A) - np.mean(B)) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(A) - 1) + vb**2 / (len(B) - 1))
    assert p == pytest.approx(2 * stats.t.sf(abs(t), dof))
    assert math.isnan(welch_p([70.0], B))


# ------------------------------------------------------------------------------------------ fake runs
def write_summary(root, name, overrides, seed, miou, status="finished", **extra):
    """A minimal summary.json as training/summary.py writes it (mIoU in [0, 1])."""
    run = root / name
    run.mkdir(parents=True)
    s = {
        "schema": 1,
        "dataset": "camvid",
        "model": "smp",
        "model_name": "Unet-resnet18",
        "overrides": [*overrides, f"seed={seed}", f"LOGDIR={root}"],
        "seed": seed,
        "status": status,
        "error": "",
        "best": {"epoch": 3, "mIoU": miou, "aAcc": 0.9, "IoU": {"Sky": miou, "Road": 0.5}},
        "last": {"epoch": 4, "train_loss": 0.5, "val_loss": 0.7},
        "epochs_done": 5,
        "time": {"total_s": 100.0 + seed, "train_s": 80.0, "s_per_step_median": 0.2},
        "params": 14_000_000,
        "gflops": 1.0,
        "checkpoint_mb": 115.0,
        "hostname": "elsewhere",
        "pid": 1,
        **extra,
    }
    (run / "summary.json").write_text(json.dumps(s))
    return run


@pytest.fixture
def fake_runs(tmp_path):
    root = tmp_path / "logs"
    for i, (seed, v) in enumerate(zip([1, 2, 3], A)):
        run = write_summary(root, f"unet/{i}", ["model.arch=Unet", "num_workers=4"], seed, v / 100)
        # validation.py records (test split counts, val split does not) and a benchmark.py record of the run
        for stamp, split, miou in (
            ("2026-01-01_00-00-00", "test", 0.60 + i / 100),
            ("2026-01-02_00-00-00", "val", 0.1),
        ):
            (run / "validation" / stamp).mkdir(parents=True)
            (run / "validation" / stamp / "metrics.json").write_text(json.dumps({"split": split, "mIoU": miou}))
        rec = BenchmarkRecord(name="Unet-resnet18", method="Unet", fps=20.0 + i, resolution="480x360")
        write_record(rec, run / "benchmark")
    for i, (seed, v) in enumerate(zip([1, 2, 3, 4], B)):
        write_summary(root, f"fpn/{i}", ["model.arch=FPN", f"num_workers={i}"], seed, v / 100)
    write_summary(root, "fpn/failed", ["model.arch=FPN"], 5, 0.99, status="failed", error="RuntimeError: boom")
    write_summary(root, "fpn/lr", ["model.arch=FPN", "lr=0.1"], 1, 0.5)
    (root / "broken").mkdir()
    (root / "broken" / "summary.json").write_text("{not json")
    return root


def test_configuration_ignores_seed_and_paths_but_not_other_overrides():
    a = configuration_overrides(["model.arch=FPN", "seed=1", "LOGDIR=/x", "environment.data_root=/d", "+lr=0.1"])
    b = configuration_overrides(["+lr=0.1", "seed=2", "model.arch=FPN", "hydra.run.dir=/y"])
    assert a == b == {"lr": "0.1", "model.arch": "FPN"}
    assert configuration_overrides(["model.arch=Unet", "seed=1"]) != configuration_overrides(["model.arch=FPN"])


def test_grouping_and_statistics_from_summaries(fake_runs, tmp_path):
    warnings = []
    rows = read_runs(fake_runs, warn=warnings.append)
    assert len(rows) == 9  # the unreadable one is skipped, named in one line
    assert len(warnings) == 1 and "broken/summary.json" in warnings[0] and "\n" not in warnings[0]
    assign_configurations(rows)
    configs = {r["run"]: r["config"] for r in rows}
    assert configs["unet/0"] == configs["unet/2"] == "model.arch=Unet"
    assert configs["fpn/0"] == configs["fpn/3"] == configs["fpn/failed"] == "model.arch=FPN"  # workers ignored
    assert configs["fpn/lr"] == "lr=0.1 model.arch=FPN"

    out = tmp_path / "tables"
    compare(fake_runs, out, baseline="model.arch=Unet", warn=warnings.append)
    exp = pd.read_csv(out / "experiments.csv").set_index("config")
    assert list(exp.index) == ["lr=0.1 model.arch=FPN", "model.arch=FPN", "model.arch=Unet"]
    fpn, unet = exp.loc["model.arch=FPN"], exp.loc["model.arch=Unet"]
    assert fpn["n"] == 4 and fpn["status_counts"] == "finished: 4, failed: 1"  # failed run excluded from stats
    assert fpn["mIoU_mean"] == pytest.approx(np.mean(B)) and fpn["mIoU_std"] == pytest.approx(np.std(B, ddof=1))
    assert fpn["mIoU_max"] == pytest.approx(69.5)  # not the failed run's 99
    assert fpn["mIoU_runs"] == "68.00, 69.50, 67.10, 68.80"  # seed order
    assert unet["mIoU_ci95"] == pytest.approx(describe(A)["ci95"])
    assert unet["best_run"] == "unet/2" and unet["time_s_mean"] == pytest.approx(102.0)
    assert unet["test_mIoU"] == pytest.approx(61.0) and unet["fps"] == pytest.approx(21.0)
    assert math.isnan(fpn["test_mIoU"]) and math.isnan(fpn["fps"])
    assert fpn["delta_mean"] == pytest.approx(np.mean(B) - np.mean(A))
    assert fpn["p_welch"] == pytest.approx(stats.ttest_ind(B, A, equal_var=False).pvalue)
    assert unet["delta_mean"] == 0.0
    runs = pd.read_csv(out / "runs.csv")
    assert dict(zip(runs.run, runs.status))["fpn/failed"] == "failed"
    assert runs.set_index("run").loc["fpn/failed", "error"] == "RuntimeError: boom"
    assert runs.set_index("run").loc["unet/1", "test_records"] == "validation/2026-01-01_00-00-00/metrics.json"
    md = (out / "experiments.md").read_text()
    assert "| 71.20, 70.40, **72.90** |" in re.sub(r" *\| *", " | ", md)  # seed order, best in bold
    per_class = pd.read_csv(out / "per_class_iou.csv").set_index("config")
    assert per_class.loc["model.arch=Unet", "Sky"] == pytest.approx(np.mean(A))
    for stem in ("metric", "per_class_iou", "metric_vs_time", "metric_vs_fps"):
        assert (out / f"{stem}.png").stat().st_size > 1000 and (out / f"{stem}.svg").is_file()


def test_group_by_keys_and_metric_choice(fake_runs, tmp_path):
    compare(fake_runs, tmp_path / "t", by=["model.arch"], metric="aAcc", warn=lambda s: None)
    exp = pd.read_csv(tmp_path / "t" / "experiments.csv").set_index("config")
    assert exp.loc["model.arch=FPN", "n"] == 5  # lr=0.1 joins its architecture
    assert exp.loc["model.arch=Unet", "aAcc_mean"] == pytest.approx(90.0)


def test_cli_errors_are_one_line_and_write_nothing(fake_runs, tmp_path, capsys):
    assert run_subcommand("compare", [f"root={tmp_path / 'empty_does_not_exist'}"]) == 1
    (tmp_path / "empty").mkdir()
    out = tmp_path / "t"
    assert run_subcommand("compare", [f"root={tmp_path / 'empty'}", f"tables={out}"]) == 1
    assert "no readable summary.json" in capsys.readouterr().err
    assert run_subcommand("compare", [f"root={fake_runs}", f"tables={out}", "baseline=nope"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("benchmark.py compare: baseline='nope' is not a configuration; configurations: [")
    assert not out.exists() or not any(out.iterdir())


def test_unknown_by_key_exits_1_in_one_line_naming_the_key_and_its_near_miss(fake_runs, tmp_path, capsys):
    out = tmp_path / "t"
    assert run_subcommand("compare", [f"root={fake_runs}", f"tables={out}", "by=model.acrh"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("benchmark.py compare: by= key 'model.acrh' is in no run's overrides")
    assert "did you mean model.arch" in err[-1]
    assert not out.exists() or not any(out.iterdir())


def _add_test_record(run, stamp, miou, checkpoint="checkpoints/best.ckpt", **inference):
    folder = run / "validation" / stamp
    folder.mkdir(parents=True)
    record = {
        "split": "test",
        "mIoU": miou,
        "checkpoint": str(run / checkpoint),
        "inference": {"mode": "whole", "scales": [1.0], "flip": False, **inference},
        "precision": "32-true",
        "num_images": 233,
    }
    (folder / "metrics.json").write_text(json.dumps(record))


def test_runs_of_two_datasets_are_never_one_row(tmp_path):
    root = tmp_path / "logs"
    for i, v in enumerate(A):
        write_summary(root, f"camvid/{i}", ["model.arch=Unet"], i, v / 100)
        write_summary(root, f"folder/{i}", ["model.arch=Unet"], i, v / 200, dataset="folder")
    compare(root, tmp_path / "t", by=["model.arch"], warn=lambda s: None)
    exp = pd.read_csv(tmp_path / "t" / "experiments.csv").set_index("config")
    assert list(exp.index) == ["model.arch=Unet (camvid)", "model.arch=Unet (folder)"]
    assert exp.loc["model.arch=Unet (camvid)", "mIoU_mean"] == pytest.approx(np.mean(A))
    assert exp.loc["model.arch=Unet (folder)", "mIoU_mean"] == pytest.approx(np.mean(A) / 2)
    assert set(exp["dataset"]) == {"camvid", "folder"}


def test_fp32_and_bf16_records_of_the_same_runs_are_never_averaged(tmp_path):
    root = tmp_path / "logs"
    for i, v in enumerate(A):
        run = write_summary(root, f"unet/{i}", ["model.arch=Unet"], i, v / 100)
        for precision, fps in (("32-true", 10.0 + i), ("bf16-mixed", 30.0 + i)):
            rec = BenchmarkRecord(name="Unet", method="Unet", fps=fps, resolution="512x512", precision=precision)
            rec.threads, rec.hardware_profile = 2, "CPU X [avx2]"
            write_record(rec, run / "benchmark")
        # an older fp32 record of the same setting: the newest of a setting counts
        old = BenchmarkRecord(
            name="Unet", method="Unet", fps=99.0, resolution="512x512", timestamp="2020-01-01T00:00:00"
        )
        old.threads, old.hardware_profile = 2, "CPU X [avx2]"
        write_record(old, run / "benchmark")
        # the same setting on another CPU is another column
        other = BenchmarkRecord(name="Unet", method="Unet", fps=5.0, resolution="512x512")
        other.threads, other.hardware_profile = 2, "CPU Y [avx2 avx512f]"
        write_record(other, run / "benchmark")
    compare(root, tmp_path / "t", warn=lambda s: None)
    exp = pd.read_csv(tmp_path / "t" / "experiments.csv")
    fps = {c: exp.loc[0, c] for c in exp.columns if c.startswith("fps") and not c.endswith("GFLOPs")}
    assert sorted(fps.values()) == pytest.approx([5.0, 11.0, 31.0])  # one column per setting, each its own mean
    md = (tmp_path / "t" / "experiments.md").read_text()
    for setting in (
        "eager/bf16-mixed 512x512 batch 1, 2 threads, CPU X [avx2]",
        "eager/32-true 512x512 batch 1, 2 threads, CPU X [avx2]",
        "eager/32-true 512x512 batch 1, 2 threads, CPU Y [avx2 avx512f]",
    ):
        assert setting in md  # the caption names each column's setting
    runs = pd.read_csv(tmp_path / "t" / "runs.csv")
    assert runs.loc[0, "fps [eager/32-true 512x512 batch 1, 2 threads, CPU X [avx2]]"] == pytest.approx(10.0)


def test_select_rules_and_test_at_best_val_keeps_inference_settings_apart(tmp_path, capsys):
    root = tmp_path / "logs"
    for i, v in enumerate(A):
        run = write_summary(root, f"unet/{i}", ["model.arch=Unet"], i, v / 100)
        _add_test_record(run, "2026-01-01_00-00-00", 0.60 + i / 100)
        _add_test_record(run, "2026-01-02_00-00-00", 0.65 + i / 100, mode="slide", crop_size=[8, 8], stride=[4, 4])
        _add_test_record(run, "2026-01-03_00-00-00", 0.10, checkpoint="checkpoints/last.ckpt")  # not at best val
    run = write_summary(root, "unet/untested", ["model.arch=Unet"], 9, 0.99)
    # best (default): the best val epoch, named as optimistic in the caption; test columns by setting
    compare(root, tmp_path / "best", warn=lambda s: None)
    exp = pd.read_csv(tmp_path / "best" / "experiments.csv")
    assert exp.loc[0, "mIoU_mean"] == pytest.approx(np.mean([*A, 99.0]))
    assert sorted(c for c in exp.columns if c.startswith("test_mIoU")) == [f"test_mIoU ({k})" for k in (1, 2, 3)]
    md = (tmp_path / "best" / "experiments.md").read_text()
    assert "val split, best epoch of each run (the maximum over epochs on the split that picked it: optimistic)" in md
    # last: the last val epoch
    for i, v in enumerate(A):
        s = json.loads((root / f"unet/{i}" / "summary.json").read_text())
        s["last"]["val_mIoU"] = v / 100 - 0.05
        (root / f"unet/{i}" / "summary.json").write_text(json.dumps(s))
    compare(root, tmp_path / "last", select="last", warn=lambda s: None)
    exp = pd.read_csv(tmp_path / "last" / "experiments.csv")
    assert exp.loc[0, "mIoU_mean"] == pytest.approx(np.mean(A) - 5.0) and exp.loc[0, "n"] == 3
    assert "val split, last epoch of each run" in (tmp_path / "last" / "experiments.md").read_text()
    # test-at-best-val: one row per inference setting of best.ckpt, never averaged; last.ckpt's record unused
    with pytest.raises(SystemExit) as exit_info:
        run_subcommand("compare", [f"root={root}", f"tables={tmp_path / 't'}", "select=x"])
    assert (
        exit_info.value.code == 2
        and "select=x: select is one of best, last, test-at-best-val" in capsys.readouterr().err
    )
    compare(root, tmp_path / "t", select="test-at-best-val", warn=lambda s: None)
    exp = pd.read_csv(tmp_path / "t" / "experiments.csv").set_index("inference")
    whole = exp.loc["test, whole, scales [1.0], 233 images, 32-true"]
    slide = exp.loc["test, slide 8x8/4x4, scales [1.0], 233 images, 32-true"]
    assert whole["n"] == 3 and whole["mIoU_mean"] == pytest.approx(61.0)
    assert slide["n"] == 3 and slide["mIoU_mean"] == pytest.approx(66.0)
    untested = exp[exp["config"].str.contains("no test record")]
    assert len(untested) == 1 and untested["n"].iloc[0] == 0
    assert "finished without a value: 1" in untested["status_counts"].iloc[0]
    md = (tmp_path / "t" / "experiments.md").read_text()
    assert "test split, the checkpoint of each run's best val epoch" in md


def test_running_summary_of_a_gone_process_is_killed():
    here = {"status": "running", "hostname": socket.gethostname()}
    me = {**here, "pid": os.getpid(), "pid_start": process_start(os.getpid())}
    assert effective_status(me) == "running"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert effective_status({**here, "pid": gone.pid, "pid_start": 1}) == "killed"
    assert effective_status({**me, "pid_start": me["pid_start"] + 1}) == "killed"  # pid reused by another process
    assert effective_status({**me, "hostname": "another-host"}) == "running"  # cannot tell from here
    assert effective_status({**me, "status": "finished"}) == "finished"


# ------------------------------------------------------------------------------------------ real runs
SWEEP = [o for o in TINY_RUN if not o.startswith(("trainer.limit_train_batches", "trainer.limit_val_batches"))] + [
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "num_vis=0",
]


@pytest.mark.slow
def test_sweep_then_compare_two_configs_three_seeds(tmp_path):
    logs, tables = tmp_path / "logs", tmp_path / "tables"
    assert call_hydra_cli("main", ["-m", "model.arch=Unet,FPN", "seed=1,2,3", *SWEEP, f"LOGDIR={logs}"]) == 0
    assert run_subcommand("compare", [f"root={logs}", f"tables={tables}"]) == 0
    exp = pd.read_csv(tables / "experiments.csv").set_index("config")
    assert sorted(exp.index) == ["model.arch=FPN", "model.arch=Unet"]
    assert list(exp["n"]) == [3, 3] and list(exp["seeds"]) == ["1, 2, 3", "1, 2, 3"]
    runs = pd.read_csv(tables / "runs.csv")
    for config, row in exp.iterrows():
        summaries = []
        for run in runs[runs.config == config].sort_values("seed").run:
            summaries.append(json.loads((logs / run / "summary.json").read_text()))
        assert [s["status"] for s in summaries] == ["finished"] * 3
        assert row["mIoU_runs"] == ", ".join(f"{100 * s['best']['mIoU']:.2f}" for s in summaries)
        assert row["mIoU_mean"] == pytest.approx(np.mean([100 * s["best"]["mIoU"] for s in summaries]))
        s = summaries[0]
        assert s["model_name"] == f"{config.split('=')[1]}-resnet18" and s["epochs_done"] == 1 and s["steps_done"] == 1
        assert row["GFLOPs"] == pytest.approx(s["gflops"]) and s["flops_at"]["crop_size"] == [64, 96]
        assert s["time"]["train_images"] == 2 and s["last"]["val_loss"] > 0 and s["git"]["commit"]
        assert s["devices"]["hardware_profile"] == hardware_profile("cpu")
        # one epoch: the last validation is the best one, under its own metric names
        for k in ("mIoU", "aAcc", "mAcc"):  # logged in float32, recomputed from the confusion matrix in float64
            assert s["last"][k] == pytest.approx(s["best"][k], rel=1e-6)
    assert (tables / "metric.png").is_file() and (tables / "metric_vs_time.svg").is_file()
    last = tmp_path / "last"
    assert run_subcommand("compare", [f"root={logs}", f"tables={last}", "select=last"]) == 0
    assert pd.read_csv(last / "experiments.csv")["mIoU_mean"].tolist() == pytest.approx(exp["mIoU_mean"].tolist())


@pytest.mark.slow
def test_sigkill_mid_epoch_shows_killed_with_last_epoch(tmp_path):
    run_dir = tmp_path / "logs" / "killed"
    kill = ["+callbacks.kill._target_=tests.training.killer.KillAtStep", "+callbacks.kill.step=3"]
    r = run_entry(
        "main.py",
        *TINY_RUN,
        "epochs=3",
        "num_vis=0",
        *kill,
        f"hydra.run.dir={run_dir}",
        env={"SEGBENCH_TEST_KILL": "1"},
    )
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "running" and summary["epochs_done"] == 1  # written at the end of epoch 0
    tables = tmp_path / "tables"
    assert run_subcommand("compare", [f"root={tmp_path / 'logs'}", f"tables={tables}"]) == 0
    run = pd.read_csv(tables / "runs.csv").iloc[0]
    assert run["status"] == "killed" and run["last_epoch"] == 0 and run["epochs_done"] == 1
    assert run["mIoU"] == pytest.approx(100 * summary["best"]["mIoU"])
    exp = pd.read_csv(tables / "experiments.csv").iloc[0]
    assert exp["n"] == 0 and exp["status_counts"] == "killed: 1" and math.isnan(exp["mIoU_mean"])


def test_mpc_and_rpc_are_metrics_from_the_corruption_records(tmp_path):
    """validation.py corruptions=... records carry mPC / rPC; a plain record of the same run is another setting."""
    root = tmp_path / "logs"
    mpc, clean = [0.30, 0.33, 0.36], [0.60, 0.60, 0.62]
    grid = {"corruptions": ["fog", "snow"], "severities": [1, 2], "seed": 0, "label": "fog+snow"}
    for i, v in enumerate(A):
        run = write_summary(root, f"unet/{i}", ["model.arch=Unet"], i, v / 100)
        _add_test_record(run, "2026-01-01_00-00-00", clean[i])
        _add_test_record(run, "2026-01-02_00-00-00", clean[i])
        path = run / "validation" / "2026-01-02_00-00-00" / "metrics.json"
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "mPC": mpc[i], "rPC": mpc[i] / clean[i], "robustness": grid}))
    for metric, values in (("mPC", mpc), ("rPC", [m / c for m, c in zip(mpc, clean)])):
        compare(root, tmp_path / metric, metric=metric, select="test-at-best-val", warn=lambda s: None)
        exp = pd.read_csv(tmp_path / metric / "experiments.csv").set_index("inference")
        corrupted = exp.loc[
            "test, whole, scales [1.0], 233 images, 32-true, corrupted: fog+snow x severities [1, 2], seed 0"
        ]
        assert corrupted["n"] == 3 and corrupted[f"{metric}_mean"] == pytest.approx(100 * np.mean(values))
        assert corrupted[f"{metric}_std"] == pytest.approx(100 * np.std(values, ddof=1))
        plain = exp.loc["test, whole, scales [1.0], 233 images, 32-true"]
        assert plain["n"] == 0  # a record without corruptions has no mPC
        assert f"{metric} (" in (tmp_path / metric / "experiments.md").read_text()
        runs = pd.read_csv(tmp_path / metric / "runs.csv").drop_duplicates("run")  # a row per run and setting
        column = [c for c in runs.columns if c.startswith(f"test_{metric} [") and "corrupted" in c]
        assert len(column) == 1 and sorted(runs[column[0]].dropna()) == pytest.approx(sorted(100 * np.array(values)))
    # no summary.json has mPC: the val-epoch rules say so in one line
    with pytest.raises(ValueError, match="^metric=mPC comes from validation.py corruptions=.*select=test-at-best-val$"):
        compare(root, tmp_path / "best", metric="mPC", warn=lambda s: None)
    assert "mPC" in build_parser().help_text() and "rPC" in build_parser().help_text()
