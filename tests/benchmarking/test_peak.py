"""``benchmark.py peak``: matmul peaks per precision, refused where the CPU lacks the precision natively, stored per
hardware profile and thread count (benchmarking/peak.py, benchmarking/peak_store.py)."""

from __future__ import annotations

import pytest

import benchmark
from benchmarking import peak as peak_module
from benchmarking.peak_store import NATIVE_FLAGS, lookup_peak, peaks_file, read_peaks
from core.measure import cpu_flags, hardware_profile

TINY = ["size=64", "warmup=1", "repeat=3", "threads=1"]


def native() -> list[str]:
    flags = cpu_flags()
    return [p for p, need in NATIVE_FLAGS.items() if not need or set(need) & flags]


def peak_cli(argv) -> int:
    """``python benchmark.py peak ARGV`` in-process; its exit status."""
    with pytest.raises(SystemExit) as e:
        benchmark.cli(["peak", *argv])
    return e.value.code


def test_peak_command_measures_every_native_precision_and_stores_it(tmp_path, capsys):
    assert peak_cli([*TINY, f"LOGDIR={tmp_path}"]) == 0
    out = capsys.readouterr().out.splitlines()
    have = native()
    assert [ln.split(":")[0] for ln in out[:-1]] == have  # one line per native precision, then the file
    path = peaks_file(tmp_path / "benchmark" / "peaks", hardware_profile("cpu"))
    assert out[-1] == str(path)
    stored = read_peaks(path.parent, hardware_profile("cpu"))
    assert list(stored) == [1] and list(stored[1]) == have
    for p, entry in stored[1].items():
        assert entry["tflops"] > 0 and entry["threads"] == 1 and entry["size"] == 64
        assert entry["flops_per_call"] == 2 * 64**3 and len(entry["runs_tflops"]) == 3
        assert entry["tflops"] == sorted(entry["runs_tflops"])[1]  # the median of 3
        assert lookup_peak(path.parent, hardware_profile("cpu"), 1, {"fp32": "32-true"}.get(p, p)) == entry["tflops"]
    # a second run of one precision replaces that entry only
    assert peak_cli([*TINY, "precisions=[fp32]", f"LOGDIR={tmp_path}"]) == 0
    again = read_peaks(path.parent, hardware_profile("cpu"))[1]
    assert list(again) == have and again["fp32"]["timestamp"] >= stored[1]["fp32"]["timestamp"]
    assert all(again[p] == stored[1][p] for p in have if p != "fp32")


def test_int8_kernel_is_the_quantised_linear_where_the_cpu_has_vnni():
    if "int8" not in native():
        pytest.skip(f"this CPU ({hardware_profile('cpu')}) has none of {NATIVE_FLAGS['int8']}")
    import torch

    engine = torch.backends.quantized.engine
    r = peak_module.matmul_peak("int8", size=64, warmup=1, repeat=1, threads=1)
    assert r["kernel"].startswith("torch.ao.nn.quantized.Linear uint8 x int8 (") and r["tflops"] > 0
    assert torch.backends.quantized.engine == engine  # the process-wide engine is restored


def test_precision_the_cpu_lacks_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(peak_module, "cpu_flags", lambda: {"avx2", "fma"})  # an AVX2 CPU
    assert peak_cli(["precisions=[bf16]", f"LOGDIR={tmp_path}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("benchmark.py peak: not native on this CPU (") and err.endswith(
        "): bf16 needs avx512_bf16 or amx_bf16"
    )
    assert peak_cli(["precisions=[fp32,bf16,int8]", f"LOGDIR={tmp_path}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("bf16 needs avx512_bf16 or amx_bf16; int8 needs avx512_vnni or avx_vnni or amx_int8")
    assert not (tmp_path / "benchmark").exists()  # nothing measured, nothing stored
    # without precisions=, only the native ones (fp32 here)
    assert peak_cli([*TINY, f"LOGDIR={tmp_path}"]) == 0
    assert [ln.split(":")[0] for ln in capsys.readouterr().out.splitlines()[:-1]] == ["fp32"]


def test_bad_arguments_are_one_line(capsys):
    assert peak_cli(["precisions=[fp16]"]) == 2
    assert capsys.readouterr().err.strip() == (
        "benchmark.py peak: precisions=[fp16]: unknown ['fp16']; valid ['fp32', 'bf16', 'int8']"
    )
    assert peak_cli(["threads=two"]) == 2
    assert capsys.readouterr().err.strip() == "benchmark.py peak: threads=two: not an integer"
    assert peak_cli(["sizes=64"]) == 2
    assert "bad argument 'sizes=64'; use key=value with key in" in capsys.readouterr().err


def test_a_failed_run_leaves_the_stored_file_as_it_was(tmp_path, monkeypatch, capsys):
    assert peak_cli([*TINY, "precisions=[fp32]", f"LOGDIR={tmp_path}"]) == 0
    path = peaks_file(tmp_path / "benchmark" / "peaks", hardware_profile("cpu"))
    before = path.read_bytes()
    real = peak_module.matmul_peak

    def second_fails(precision, *args):
        if precision != "fp32":
            raise RuntimeError("kernel crashed")
        return real(precision, *args)

    monkeypatch.setattr(peak_module, "matmul_peak", second_fails)
    monkeypatch.setattr(peak_module, "cpu_flags", lambda: {"avx512_bf16"})  # so that bf16 is asked and fails
    assert peak_cli([*TINY, "precisions=[fp32,bf16]", f"LOGDIR={tmp_path}"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "benchmark.py peak: bf16 failed, nothing stored: RuntimeError: kernel crashed"
    )
    assert path.read_bytes() == before
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"not a peaks file .*; move it away and run `benchmark.py peak` again"):
        read_peaks(path.parent, hardware_profile("cpu"))
    assert lookup_peak(path.parent, hardware_profile("cpu"), 1, "fp32") is None
    assert peak_cli([*TINY, "precisions=[fp32]", f"LOGDIR={tmp_path}"]) == 1  # never replaces an unreadable file
    assert path.read_text() == "{not json" and "nothing stored:" in capsys.readouterr().err
