"""scripts/deploy_table.py: the deployment sweep's markdown table from benchmark records."""

from __future__ import annotations

import importlib.util

import pytest

from core.records import BenchmarkRecord, write_record
from tests.conftest import REPO, error_line

_spec = importlib.util.spec_from_file_location("deploy_table", REPO / "scripts" / "deploy_table.py")
deploy_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deploy_table)


def unet_cells(out: str) -> list[list[str]]:
    """The stripped cells of each printed table row of the model ``Unet-x``."""
    return [[c.strip() for c in ln.split("|")[1:-1]] for ln in out.splitlines() if ln.startswith("| Unet-x")]


def _rec(backend, precision, fps, **kw):
    return BenchmarkRecord(
        name="Unet-x", method="Unet", backend=backend, precision=precision, fps=fps, latency_ms_p50=1000 / fps,
        latency_ms_p95=1100 / fps, gflops=20.0, timestamp=f"2026-01-01T00:00:0{int(fps)}", **kw,
    )  # fmt: skip


def test_rows_give_speed_up_memory_parity_and_peak_fraction(tmp_path, capsys):
    folder = tmp_path / "run" / "benchmark"  # records are read from benchmark/ folders
    write_record(_rec("eager", "32-true", 2.0, memory_peak_mib=1000.0, memory_forward_mib=100.0, mIoU=0.6), folder)
    write_record(
        _rec("openvino", "int8", 6.0, memory_peak_mib=1500.0, memory_forward_mib=20.0, mIoU=0.595,
             parity_delta_mIoU=-0.005, parity_label_agreement=0.99, parity_max_abs_logit=0.5, parity_ok=True),
        folder,
    )  # fmt: skip
    assert deploy_table.main([f"roots=[{tmp_path}]", "peak_tflops=0.5"]) == 0
    rows = [" | ".join(c) for c in unet_cells(capsys.readouterr().out)]
    assert rows[0] == "Unet-x | eager | 32-true | 2.00 | 1.00x | 500 / 550 | 1000 / 100 | +0.00 |  |  | 8.0"
    # int8: 3x eager, ΔmIoU from the record's parity (points), 20 GFLOPs x 6 fps = 0.12 TFLOP/s = 24 % of 0.5
    assert rows[1] == "Unet-x | openvino | int8 | 6.00 | 3.00x | 167 / 183 | 1500 / 20 | -0.50 | 0.9900 | 0.5 | 24.0"


def test_speed_up_is_relative_to_the_median_of_the_eager_fp32_records(tmp_path, capsys):
    folder = tmp_path / "run" / "benchmark"
    for backend, precision, fps in (("eager", "32-true", 2.0), ("openvino", "bf16-mixed", 6.0), ("eager", "fp32", 4.0)):
        write_record(_rec(backend, precision, fps, mIoU=0.6), folder)
    assert deploy_table.main([f"roots=[{tmp_path}]"]) == 0
    out = capsys.readouterr().out
    rows = [c[3:5] for c in unet_cells(out)]
    assert rows == [["2.00", "0.67x"], ["4.00", "1.33x"], ["6.00", "2.00x"]]  # by time (_rec: fps = second); median 3
    assert "eager 32-true fps in sweep order: Unet-x 2.00, 4.00 (speed-ups are relative to the median" in out


def test_failed_member_is_a_row_with_its_error_and_the_exit_code_says_so(tmp_path, capsys):
    folder = tmp_path / "run" / "benchmark"
    write_record(_rec("eager", "32-true", 2.0, mIoU=0.6), folder)
    write_record(
        _rec("openvino", "bf16-mixed", 3.0, status="failed", error="ValueError: needs a CPU with BF16"), folder
    )
    assert deploy_table.main([f"roots=[{tmp_path}]"]) == 1
    captured = capsys.readouterr()
    rows = unet_cells(captured.out)
    assert rows[1] == ["Unet-x", "openvino", "bf16-mixed", "failed: ValueError: needs a CPU with BF16", *[""] * 7]
    assert captured.err.strip() == "1 of 2 records failed"


def test_speed_up_and_delta_miou_compare_like_for_like(tmp_path, capsys):
    """Eager fp32 at two resolutions and at two thread counts: every row is compared with its own setting's eager
    median; a setting without eager fp32 gets empty cells; ΔmIoU needs the same evaluated split and images."""
    folder = tmp_path / "run" / "benchmark"
    rows = [  # (backend, precision, fps, resolution, threads, extra fields)
        ("eager", "32-true", 2.0, "512x512", 2, {"mIoU": 0.60, "eval_split": "val", "eval_images": 10}),
        ("eager", "32-true", 1.0, "1024x512", 2, {"mIoU": 0.70, "eval_split": "val", "eval_images": 10}),
        ("eager", "32-true", 3.0, "512x512", 4, {}),
        ("openvino", "int8", 6.0, "512x512", 2, {}),
        ("openvino", "int8", 4.0, "1024x512", 2, {}),
        ("openvino", "int8", 7.0, "512x512", 4, {}),
        ("openvino", "int8", 8.0, "256x256", 2, {}),  # no eager fp32 at 256x256
        ("eager", "32-true", 4.0, "512x512", 2, {}),  # second eager at 512x512, 2 threads: median (2 + 4) / 2 = 3
        ("channels_last", "bf16-mixed", 9.0, "512x512", 2, {"mIoU": 0.59, "eval_split": "val", "eval_images": 10}),
        ("channels_last", "bf16-mixed", 8.5, "1024x512", 2, {"mIoU": 0.69, "eval_split": "val", "eval_images": 5}),
    ]
    for second, (backend, precision, fps, res, threads, extra) in enumerate(rows):
        rec = _rec(backend, precision, fps, resolution=res, threads=threads, **extra)
        rec.timestamp = f"2026-01-01T00:00:{second:02d}"  # sweep order = list order
        write_record(rec, folder)
    assert deploy_table.main([f"roots=[{tmp_path}]", "seeded=2026-01-01"]) == 0
    out = capsys.readouterr().out
    got = [c[:8] for c in unet_cells(out)]
    cells = [(m, b, speed, dm) for m, b, _p, _fps, speed, _lat, _mem, dm in got]
    assert cells == [
        ("Unet-x (512x512, 2 threads)", "eager", "0.67x", "+0.00"),
        ("Unet-x (1024x512, 2 threads)", "eager", "1.00x", "+0.00"),
        ("Unet-x (512x512, 4 threads)", "eager", "1.00x", ""),
        ("Unet-x (512x512, 2 threads)", "openvino", "2.00x", ""),  # 6 / 3
        ("Unet-x (1024x512, 2 threads)", "openvino", "4.00x", ""),  # 4 / 1
        ("Unet-x (512x512, 4 threads)", "openvino", "2.33x", ""),  # 7 / 3
        ("Unet-x (256x256, 2 threads)", "openvino", "", ""),  # never against another setting's eager
        ("Unet-x (512x512, 2 threads)", "eager", "1.33x", ""),
        ("Unet-x (512x512, 2 threads)", "channels_last", "3.00x", "-1.00"),  # 59 - 60 on the same 10 images
        ("Unet-x (1024x512, 2 threads)", "channels_last", "8.50x", ""),  # evaluated on 5 images, eager on 10
    ]
    assert "eager 32-true mIoU (%): Unet-x (512x512, 2 threads) 60.00, Unet-x (1024x512, 2 threads) 70.00" in out


def test_same_cpu_name_with_other_isa_flags_is_another_setting(tmp_path, capsys):
    """Two VMs report "AMD EPYC", one with AVX-512 BF16: the hardware profile keeps their speed-ups apart."""
    folder = tmp_path / "run" / "benchmark"
    for second, (backend, precision, fps, profile) in enumerate(
        [
            ("eager", "32-true", 2.0, "AMD EPYC [avx2]"),
            ("eager", "32-true", 4.0, "AMD EPYC [avx2 avx512_bf16 avx512f]"),
            ("openvino", "int8", 6.0, "AMD EPYC [avx2]"),
            ("openvino", "int8", 16.0, "AMD EPYC [avx2 avx512_bf16 avx512f]"),
        ]
    ):
        rec = _rec(backend, precision, fps, resolution="512x512", threads=2, device_name="AMD EPYC")
        rec.hardware_profile, rec.timestamp = profile, f"2026-01-01T00:00:{second:02d}"
        write_record(rec, folder)
    assert deploy_table.main([f"roots=[{tmp_path}]"]) == 0
    out = capsys.readouterr().out
    speed = [c[4] for c in unet_cells(out) if c[1] == "openvino"]
    assert speed == ["3.00x", "4.00x"]  # each against its own machine's eager fp32 (not the median 3.0)


def test_percent_of_own_peak_uses_the_stored_peak_of_each_records_precision(tmp_path, capsys):
    """fp32 rows (eager, ONNX Runtime, OpenVINO) against the fp32 peak, bf16 (autocast, OpenVINO) against bf16, int8
    against int8, each of the record's hardware profile and thread count; none stored: empty cell and a hint."""
    from benchmarking.peak_store import store_peaks

    cpu = "Test CPU [avx512_bf16 avx512_vnni avx512f]"
    peaks = tmp_path / "peaks"
    store_peaks(peaks, cpu, 2, {"fp32": {"tflops": 0.2}, "bf16": {"tflops": 0.5}, "int8": {"tflops": 0.8}})
    store_peaks(peaks, cpu, 1, {"fp32": {"tflops": 0.1}})
    folder = tmp_path / "run" / "benchmark"
    rows = [  # backend, precision, fps, threads -> expected peak (TFLOP/s) or None
        ("eager", "32-true", 2.0, 2, 0.2),
        ("onnxruntime", "32-true", 3.0, 2, 0.2),
        ("openvino", "fp32", 4.0, 2, 0.2),
        ("channels_last", "bf16-mixed", 5.0, 2, 0.5),
        ("openvino", "bf16", 6.0, 2, 0.5),
        ("openvino", "int8", 7.0, 2, 0.8),
        ("eager", "32-true", 1.0, 1, 0.1),
        ("openvino", "int8", 3.0, 1, None),  # no int8 peak stored for 1 thread
    ]
    for second, (backend, precision, fps, threads, _) in enumerate(rows):
        rec = _rec(backend, precision, fps, threads=threads, resolution="512x512", hardware_profile=cpu)
        rec.timestamp = f"2026-01-01T00:00:{second:02d}"
        write_record(rec, folder)
    assert deploy_table.main([f"roots=[{tmp_path / 'run'}]", f"peaks={peaks}"]) == 0
    out = capsys.readouterr().out
    cells = [c[-1] for c in unet_cells(out)]
    expected = [f"{20.0 * fps / (1000 * peak) * 100:.1f}" if peak else "" for _, _, fps, _, peak in rows]
    assert cells == expected and cells[:3] == ["20.0", "30.0", "40.0"] and cells[5] == "17.5"
    assert (
        f"% of own peak: no stored int8 peak for {cpu} with 1 threads in {peaks}: run "
        "`python benchmark.py peak precisions=[int8] threads=1` on that machine (or give peak.int8=TFLOPS)" in out
    )
    assert f"% of own peak: bf16 peak 0.5 TFLOP/s on {cpu}, 2 threads" in out
    # peak.<precision> overrides one precision's stored peak; peak_tflops is one peak for every other precision
    assert deploy_table.main([f"roots=[{tmp_path / 'run'}]", f"peaks={peaks}", "peak.int8=0.35"]) == 0
    cells = [c[-1] for c in unet_cells(capsys.readouterr().out)]
    assert cells[5] == "40.0" and cells[7] == f"{100 * 20.0 * 3.0 / 350:.1f}" and cells[0] == "20.0"
    assert deploy_table.main([f"roots=[{tmp_path / 'run'}]", f"peaks={peaks}", "peak_tflops=1"]) == 0
    cells = [c[-1] for c in unet_cells(capsys.readouterr().out)]
    assert cells == [f"{2 * fps:.1f}" for _, _, fps, _, _ in rows]  # 20 GFLOPs x fps / 1 TFLOP/s
    for argv, message in [
        (
            ["peak.fp16=1"],
            "unknown key 'peak.fp16'; keys: roots, since, seeded, peaks, peak.fp32, peak.bf16, peak.int8",
        ),
        (["peak.int8=0"], "peak.int8=0.0: a peak is a positive number of TFLOP/s"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            deploy_table.main([f"roots=[{tmp_path / 'run'}]", *argv])
        assert exit_.value.code == 2 and message in error_line(capsys.readouterr().err, "deploy_table.py")


def test_precision_cells_name_accuracy_control_quantizers_and_folded_batchnorms(tmp_path, capsys):
    folder = tmp_path / "run" / "benchmark"
    ac = {"enabled": True, "max_drop": 0.5, "images": 16, "max_iters": 10, "split": "train"}
    for second, (precision, fps, extra) in enumerate(
        [
            ("32-true", 2.0, {}),
            ("int8", 6.0, {"quantizers": 57}),
            ("int8", 5.0, {"accuracy_control": ac | {"drop": 0.314, "fp32_mIoU": 60.0, "int8_mIoU": 59.686}}),
            ("int8", 5.0, {"accuracy_control": ac | {"drop": 0.2}, "quantizers": 54}),
            ("int8", 5.0, {"accuracy_control": ac, "status": "failed", "error": "ValueError: no held-out image"}),
            ("bf16-mixed", 7.0, {"batchnorm_folded": 58}),
        ]
    ):
        backend = {"32-true": "eager", "bf16-mixed": "channels_last"}.get(precision, "openvino")
        rec = _rec(backend, precision, fps, **extra)
        rec.timestamp = f"2026-01-01T00:00:{second:02d}"
        write_record(rec, folder)
    assert deploy_table.main([f"roots=[{tmp_path}]"]) == 1
    cells = [c[2:5] for c in unet_cells(capsys.readouterr().out)]
    assert cells == [
        ["32-true", "2.00", "1.00x"],
        ["int8 (57 quantizers)", "6.00", "3.00x"],
        ["int8 (accuracy control: max drop 0.5, measured 0.31 mIoU points)", "5.00", "2.50x"],
        ["int8 (accuracy control: max drop 0.5, measured 0.20 mIoU points; 54 quantizers)", "5.00", "2.50x"],
        ["int8 (accuracy control: max drop 0.5 mIoU points)", "failed: ValueError: no held-out image", ""],
        ["bf16-mixed (58 BatchNorms folded)", "7.00", "3.50x"],
    ]


def test_the_sweep_runs_int8_with_accuracy_control_and_measures_the_peaks(tmp_path):
    import os
    import subprocess

    log, fake = tmp_path / "calls.txt", tmp_path / "python"
    fake.write_text(f'#!/usr/bin/env bash\necho "$@" >> {log}\necho "x: 1.00 fps"\n')
    fake.chmod(0o755)
    env = dict(os.environ, PY=str(fake), OUT=str(tmp_path / "out"), PROTOCOL="warmup=1 iterations=2 threads=2")
    combos = "eager:fp32 openvino:int8 openvino:int8-ac channels_last:bf16+fold_bn=false+parity.images=2"
    env |= {"COMBOS": combos, "AC": "calibration.accuracy_control.max_drop=0.3"}
    subprocess.run(["bash", str(REPO / "scripts" / "deploy_sweep.sh")], env=env, check=True, capture_output=True)
    calls = log.read_text().splitlines()
    assert len(calls) == 2 * 4 + 2  # two models x four members, the peaks, the table
    assert calls[2].startswith(
        "benchmark.py model=smp backend=openvino precision=int8 calibration.accuracy_control.enabled=true "
        "calibration.accuracy_control.max_drop=0.3 resolution=512x512"
    )
    assert "accuracy_control" not in calls[1] and " precision=int8 " in calls[1]
    # +key=value: overrides of that member alone
    assert calls[3].startswith(
        "benchmark.py model=smp backend=channels_last precision=bf16 fold_bn=false parity.images=2 "
    )
    assert not any("fold_bn" in c for c in calls[:3])
    assert calls[8] == "benchmark.py peak threads=2"
    assert calls[9].startswith(f"scripts/deploy_table.py roots=['{tmp_path / 'out'}'] since=20")
    log.unlink()
    subprocess.run(["bash", str(REPO / "scripts" / "deploy_sweep.sh")], env=env | {"HRNET": ""}, check=True)
    calls = log.read_text().splitlines()
    assert len(calls) == 4 + 2 and not any("hrnet" in c for c in calls)  # HRNET= (empty): the Unet alone


def _sweep(folder, **provenance):
    """Eager fp32 of a trained Unet, OpenVINO int8 with parity, a failed OpenVINO bf16, int8 with accuracy control."""
    prov = {"hardware_profile": "CPU X [avx2]", "threads": 2, "torch_version": "2.14.1", "resolution": "512x512"}
    prov |= {"weights": "logs/run/checkpoints/best.ckpt", "memory_kind": "cpu_rss"} | provenance
    ac = {"enabled": True, "max_drop": 0.5, "drop": 0.314}
    members = [
        ("eager", "32-true", 2.0, {"mIoU": 0.6, "memory_peak_mib": 1000.0, "memory_forward_mib": 100.0}),
        ("openvino", "int8", 6.0, {"parity_delta_mIoU": -0.005, "parity_label_agreement": 0.99,
                                   "parity_max_abs_logit": 0.5, "parity_ok": True}),
        ("openvino", "bf16-mixed", 3.0, {"status": "failed", "error": "ValueError: needs a CPU with BF16"}),
        ("openvino", "int8", 5.0, {"accuracy_control": ac, "parity_delta_mIoU": 0.0021, "load_1min": 1.54}),
    ]  # fmt: skip
    for second, (backend, precision, fps, extra) in enumerate(members):
        rec = _rec(backend, precision, fps, **({"load_1min": 0.5, "commit": "abc1234"} | extra | prov))
        rec.timestamp = f"2026-01-01T00:00:{second:02d}"
        write_record(rec, folder)


def test_record_holds_the_printed_table_and_the_records_provenance(tmp_path, capsys):
    """record=: every row's fps, speed-up, ΔmIoU and % of own peak equal the printed cells; measured comes from the
    benchmark records; a failed member is a row with its error; core.results loads it and a claim can use it."""
    import shlex

    from core.results import Claim, load_record
    from report.render import render, render_claims

    _sweep(tmp_path / "run" / "benchmark")
    out = tmp_path / "results" / "sweep_x.yaml"
    argv = [f"roots=[{tmp_path}]", "peak_tflops=0.5", f"record={out}", "caption=Sweep on CPU X."]
    argv += ["command=PROTOCOL='warmup=5' scripts/deploy_sweep.sh"]
    assert deploy_table.main(argv) == 1  # a member failed: still recorded, the exit code says so
    printed = [
        [c.strip() for c in ln.split("|")[1:-1]]
        for ln in capsys.readouterr().out.splitlines()
        if ln.startswith("| Unet-x")
    ]
    rec = load_record(out)
    assert len(rec.rows) == len(printed) == 4
    for row, cells in zip(rec.rows, printed, strict=True):
        assert [row["model"], row["backend"], row["precision"]] == cells[:3]
        if "error" in row:
            continue
        assert row["fps"] == float(cells[3]) and row["speedup"] == float(cells[4].rstrip("x"))
        assert row["delta_mIoU"] == float(cells[7]) and row["pct_peak"] == float(cells[10])
        assert f"{row['p50_ms']} / {row['p95_ms']}" == cells[5]
    eager, int8, failed, ac = rec.rows
    assert (eager["fps"], eager["speedup"], eager["delta_mIoU"], eager["pct_peak"]) == (2.0, 1.0, 0.0, 8.0)
    assert (eager["mem_peak"], eager["mem_forward"], eager["trained"]) == (1000, 100, 1)
    # 6 / 2 fps; parity ΔmIoU -0.005 = -0.50 points; 20 GFLOPs x 6 fps / 0.5 TFLOP/s = 24 %
    assert (int8["speedup"], int8["delta_mIoU"], int8["abs_delta_mIoU"], int8["pct_peak"]) == (3.0, -0.5, 0.5, 24.0)
    assert (int8["label_agreement"], int8["max_abs_dlogit"]) == (0.99, 0.5)
    assert failed["fps"] == "failed: ValueError: needs a CPU with BF16" == printed[2][3]
    assert failed["error"] == "ValueError: needs a CPU with BF16" and failed["speedup"] is None
    assert ac["precision"] == "int8 (accuracy control: max drop 0.5, measured 0.31 mIoU points)"
    assert (ac["speedup"], ac["delta_mIoU"]) == (2.5, 0.21)
    m = rec.measured
    assert (m["hardware"], m["threads"], m["torch"], m["commit"], m["date"]) == (
        "CPU X [avx2]", 2, "2.14.1", "abc1234", "2026-01-01"
    )  # fmt: skip
    assert m["load"] == "1-min load average 0.5 to 1.5 at the start of the measurements"
    assert m["commands"] == [argv[-1][len("command=") :], "python scripts/deploy_table.py " + shlex.join(argv)]
    assert {"precision": "int8", "tflops": 0.5, "hardware": "CPU X [avx2]", "threads": 2} in m["peaks"]
    assert rec.caption.startswith("Sweep on CPU X. One row per benchmark record, 2026-01-01T00:00:00 .. ")
    assert "int8 peak 0.5 TOPS on CPU X [avx2], 2 threads" in rec.caption and "1 of 4 members failed" in rec.caption
    assert [c.header for c in rec.columns][-1] == "% of own peak"
    text = render(rec)  # what `benchmark.py render` puts into a page
    assert "| Unet-x  | openvino  | bf16-mixed" in text and "failed: ValueError: needs a CPU with BF16" in text
    assert "commit `abc1234`" in text and "PROTOCOL='warmup=5' scripts/deploy_sweep.sh" in text
    rec.claims = [
        Claim(
            "{backend} {precision} is {speedup:.2f}x eager within {delta_mIoU:+.2f} points.",
            [("speedup", ">=", 2.6), ("abs_delta_mIoU", "<=", 0.5), ("trained", "==", 1)],
        )
    ]
    assert render_claims(rec) == ["openvino int8 is 3.00x eager within -0.50 points."]


def test_record_without_commit_or_load_in_the_records_says_so(tmp_path, capsys):
    _sweep(tmp_path / "run" / "benchmark", commit="", load_1min=None)
    out = tmp_path / "sweep_y.yaml"
    argv = [f"roots=[{tmp_path}]", "since=2026-01-01T00:00:01", f"peaks={tmp_path / 'none'}", f"record={out}"]
    assert deploy_table.main(argv) == 1
    from core.results import load_record

    m = load_record(out).measured
    assert m["commit"] == m["load"] == "not recorded by the benchmark records" and "peaks" not in m
    assert m["date"] == "2026-01-01"


def test_a_failed_record_command_leaves_the_existing_file(tmp_path, capsys):
    _sweep(tmp_path / "run" / "benchmark")
    out = tmp_path / "results" / "sweep_x.yaml"
    out.parent.mkdir()
    out.write_text("kept\n")
    # no record since 2030: nothing to record
    assert deploy_table.main([f"roots=[{tmp_path}]", "since=2030-01-01", f"record={out}"]) == 2
    assert f"deploy_table.py: error: record={out}: sweep_x.yaml: no benchmark records" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # bad peak: before anything is read
        deploy_table.main([f"roots=[{tmp_path}]", "peak.fp16=1", f"record={out}"])
    assert out.read_text() == "kept\n"
    bad = tmp_path / "results" / "two words.yaml"  # a record name must be [A-Za-z0-9_.-]+
    assert deploy_table.main([f"roots=[{tmp_path}]", f"record={bad}"]) == 2
    assert "is not [A-Za-z0-9_.-]+" in capsys.readouterr().err and not bad.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["sweep_x.yaml"]  # no temporary file left
    # success replaces the file (as benchmark.py compare record= does)
    assert deploy_table.main([f"roots=[{tmp_path}]", f"record={out}"]) == 1
    assert out.read_text().startswith("name: sweep_x\n")


def test_the_older_flags_and_positional_roots_still_work_with_one_deprecation_line(tmp_path, capsys):
    _sweep(tmp_path / "run" / "benchmark")
    odd = tmp_path / "old=1,b"  # an older run-folder name: quoted inside the list
    _sweep(odd / "benchmark", threads=1)
    new_out, old_out = tmp_path / "new.yaml", tmp_path / "old.yaml"
    new = [f"roots=[{tmp_path / 'run'},'{odd}']", "since=2026-01-01T00:00:00", "peak.int8=0.35", "peak.fp32=0.25"]
    new += ["peak_tflops=0.5", "caption=Old and new.", "command=a 'b' \"c\"", "command=d"]
    old = [str(tmp_path / "run"), str(odd), "--since", "2026-01-01T00:00:00", "--peak", "int8=0.35", "--peak"]
    old += [
        "fp32=0.25",
        "--peak-tflops",
        "0.5",
        "--caption",
        "Old and new.",
        "--command",
        "a 'b' \"c\"",
        "--command",
        "d",
    ]
    capsys.readouterr()
    assert deploy_table.main([*new, f"record={new_out}"]) == 1
    new_printed, new_err = capsys.readouterr()
    assert deploy_table.main([*old, "--record", str(old_out)]) == 1
    old_printed, old_err = capsys.readouterr()
    assert new_printed.replace("new.yaml", "") == old_printed.replace("old.yaml", "")
    assert len(unet_cells(new_printed)) == 8  # the 4 records below each root
    assert [ln for ln in old_err.splitlines() if "deprecated" in ln] == [
        "deploy_table.py: positional arguments are deprecated, use roots=[DIR,...]; --since is deprecated, use "
        "since=<ISO time>; --peak is deprecated, use peak.<precision>=TFLOPS; --peak-tflops is deprecated, use "
        "peak_tflops=<float>; --caption is deprecated, use caption=TEXT; --command is deprecated, use command=CMD; "
        "--record is deprecated, use record=results/<name>.yaml"
    ]
    assert "deprecated" not in new_err
    from core.results import load_record

    new_rec, old_rec = load_record(new_out), load_record(old_out)
    assert new_rec.rows == old_rec.rows and new_rec.caption == old_rec.caption
    assert new_rec.measured["commands"][:2] == old_rec.measured["commands"][:2] == ["a 'b' \"c\"", "d"]
    peaks = {(p["precision"], p["threads"]): p["tflops"] for p in new_rec.measured["peaks"]}
    assert peaks[("int8", 2)] == peaks[("int8", 1)] == 0.35 and peaks[("fp32", 2)] == 0.25
